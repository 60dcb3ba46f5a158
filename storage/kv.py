"""Key-value stores behind bot.core.ports.KeyValueStore: in-process memory (one process) and Redis."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.ports import KeyValueStore
    from bot.settings import Settings

logger = logging.getLogger(__name__)


class LockTimeout(Exception):
    pass


def printable_key(key: str) -> str:
    """A key for logs and errors: its last part (often an openid) masked."""
    from bot.core.privacy import mask_openid

    head, _, last = key.rpartition(":")
    return f"{head}:{mask_openid(last)}" if head else mask_openid(key)


SWEEP_EVERY = 1000  # writes between sweeps of expired entries


class MemoryKeyValueStore:
    """Same behaviour as the Redis store, for a single process (the demo, unit tests)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # lock and how many hold or await it
        self._writes = 0

    def _alive(self, key: str) -> tuple[str, float | None] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= time.monotonic():
            del self._data[key]
            return None
        return entry

    async def get(self, key: str) -> str | None:
        entry = self._alive(key)
        return entry[0] if entry else None

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._data[key] = (value, time.monotonic() + ttl if ttl else None)
        self._writes += 1
        if self._writes % SWEEP_EVERY == 0:
            self._sweep()

    def _sweep(self) -> None:
        """Keys written once and never read again (de-duplication keys) must not pile up."""
        now = time.monotonic()
        for key in [k for k, (_, expires) in self._data.items() if expires is not None and expires <= now]:
            del self._data[key]

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        if self._alive(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    @asynccontextmanager
    async def lock(self, key: str, timeout: float = 10.0) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            try:
                if lock.locked():
                    await asyncio.wait_for(lock.acquire(), timeout)
                else:
                    await lock.acquire()  # free: taken at once, without wait_for's extra task
            except TimeoutError as exc:
                raise LockTimeout(printable_key(key)) from exc
            try:
                yield
            finally:
                lock.release()
        finally:
            # a lock nobody holds or waits for is dropped: one per user would otherwise pile up
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    async def close(self) -> None:
        self._data.clear()


class RedisKeyValueStore:
    """Shared by every worker. All keys live under `prefix`; locks under `<prefix>lock:`.

    Locks auto-expire after `lock_ttl` seconds so a crashed worker cannot hold one forever; keep
    critical sections well below that."""

    def __init__(self, url: str, prefix: str, *, lock_ttl: float = 30.0) -> None:
        import redis.asyncio as redis

        self._client = redis.from_url(url, decode_responses=True)
        self._prefix = prefix
        self._lock_ttl = lock_ttl

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def get(self, key: str) -> str | None:
        value = await self._client.get(self._key(key))
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        # milliseconds keep fractional TTLs; a falsy ttl means no expiry, as in the memory store
        await self._client.set(self._key(key), value, px=_millis(ttl) if ttl else None)

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self._client.set(self._key(key), value, px=_millis(ttl) if ttl else None, nx=True))

    async def delete(self, key: str) -> None:
        await self._client.delete(self._key(key))

    @asynccontextmanager
    async def lock(self, key: str, timeout: float = 10.0) -> AsyncIterator[None]:
        from redis.exceptions import LockError

        lock = self._client.lock(
            self._key("lock:" + key), timeout=self._lock_ttl, sleep=0.02, blocking_timeout=timeout
        )
        if not await lock.acquire():
            raise LockTimeout(printable_key(key))
        try:
            yield
        finally:
            try:
                await lock.release()
            except LockError:
                # the lease ran out while we held it; another worker may own it now, leave it be
                logger.warning("lock %s expired before release", printable_key(key))

    async def close(self) -> None:
        await self._client.aclose()


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def build_kv(settings: Settings) -> KeyValueStore:
    """Redis when configured (shared by all workers), otherwise one process's memory."""
    if settings.redis_url:
        return RedisKeyValueStore(settings.redis_url, settings.redis_prefix)
    return MemoryKeyValueStore()
