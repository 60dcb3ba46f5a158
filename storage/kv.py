"""Key-value stores behind bot.ports.KeyValueStore: in-process memory (one process) and Redis."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class LockTimeout(Exception):
    pass


class MemoryKeyValueStore:
    """Same behaviour as the Redis store, for a single process (the demo, unit tests)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

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

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        if self._alive(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    @asynccontextmanager
    async def lock(self, key: str, timeout: float = 10.0) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), timeout)
        except TimeoutError as exc:
            raise LockTimeout(key) from exc
        try:
            yield
        finally:
            lock.release()

    async def close(self) -> None:
        self._data.clear()
