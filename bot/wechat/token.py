"""The access_token, owned in one place for all workers.

Cached in the shared key-value store and refreshed under its lock, so a burst of callers (or of
workers) fetches once: every fetch invalidates the previous token on WeChat's side.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.core import keys
from bot.core.ports import KeyValueStore

log = logging.getLogger(__name__)

# invalid credential / invalid access_token / access_token expired: refetch and retry once
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})

Fetch = Callable[[], Awaitable[tuple[str, int]]]  # → (access_token, expires_in seconds)


class AccessTokenManager:
    def __init__(self, kv: KeyValueStore, fetch: Fetch, *, margin: float = 300.0, lock_timeout: float = 30.0) -> None:
        self._kv = kv
        self._fetch = fetch
        self._margin = margin
        self._lock_timeout = lock_timeout  # must exceed one fetch's HTTP timeout

    async def get(self) -> str:
        token = await self._kv.get(keys.WECHAT_TOKEN)
        if token:
            return token
        async with self._kv.lock(keys.WECHAT_TOKEN_LOCK, timeout=self._lock_timeout):
            token = await self._kv.get(keys.WECHAT_TOKEN)  # someone refreshed while we waited
            if token:
                return token
            token, expires_in = await self._fetch()
            # Expire early so no call goes out with a token about to lapse; never below half its life.
            ttl = max(expires_in - self._margin, expires_in / 2, 1.0)
            await self._kv.set(keys.WECHAT_TOKEN, token, ttl)
            log.info("wechat access_token refreshed (valid %ds, cached %ds)", expires_in, int(ttl))
            return token

    async def invalidate(self, stale: str) -> None:
        """Drop `stale` — unless another caller already replaced it (then keep the new one)."""
        async with self._kv.lock(keys.WECHAT_TOKEN_LOCK, timeout=self._lock_timeout):
            if await self._kv.get(keys.WECHAT_TOKEN) == stale:
                await self._kv.delete(keys.WECHAT_TOKEN)
