"""The key-value reads of one message in one round trip.

On Redis each read is a round trip (~0.1 ms of CPU in redis-py, more in wall time), and a
citizen's message reads several keys: its scene, whether it is a deputy, the live keywords. The
dispatcher reads them all with the user's lock, in the round trip that takes it (`lock(read=…)`,
the keys the routers declare), and the handlers' own reads of those keys are answered from that,
for the rest of the message. A write goes through to the store and drops the key from the
read-ahead, so a handler never reads its own stale write; another worker's write within the few
milliseconds of one message is not seen (as if it had come just after the read)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from bot.core.ports import Claim, KeyValueStore

class ReadAheadKV:
    """A KeyValueStore that answers reads from the current message's read-ahead where it can."""

    def __init__(self, kv: KeyValueStore) -> None:
        self.store = kv
        # the message's read-ahead: set in its handler's task, so other messages never see it
        self._read: ContextVar[dict[str, str | None] | None] = ContextVar(f"kv_read_ahead_{id(self)}", default=None)

    def done(self) -> None:
        """The message is answered: tasks it started (they copy its context) read the store."""
        read = self._read.get()
        if read is not None:
            read.clear()

    def _forget(self, *keys: str) -> None:
        read = self._read.get()
        if read is not None:
            for key in keys:
                read.pop(key, None)

    async def get(self, key: str) -> str | None:
        read = self._read.get()
        if read is not None and key in read:
            return read[key]
        return await self.store.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        read = self._read.get()
        if read is not None and all(key in read for key in keys):
            return [read[key] for key in keys]
        return await self.store.get_many(keys)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._forget(key)
        await self.store.set(key, value, ttl)

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        self._forget(key)
        return await self.store.set_if_absent(key, value, ttl)

    async def extend(self, key: str, value: str, ttl: float) -> bool:
        self._forget(key)
        return await self.store.extend(key, value, ttl)

    async def delete(self, key: str) -> None:
        self._forget(key)
        await self.store.delete(key)

    async def batch(self, *, sets: Sequence[tuple[str, str, float | None]] = (), deletes: Sequence[str] = (),
                    gets: Sequence[str] = ()) -> list[str | None]:
        self._forget(*(key for key, _, _ in sets), *deletes)
        return await self.store.batch(sets=sets, deletes=deletes, gets=gets)

    async def claim(self, key: str, value: str, ttl: float, *, seen_key: str, seen_ttl: float,
                    epoch_key: str) -> Claim:
        self._forget(key, seen_key, epoch_key)
        return await self.store.claim(key, value, ttl, seen_key=seen_key, seen_ttl=seen_ttl, epoch_key=epoch_key)

    @asynccontextmanager
    async def lock(self, key: str, timeout: float = 10.0, *,
                   read: Sequence[str] = ()) -> AsyncIterator[list[str | None]]:
        """`read`: what was read with the lock is also this message's read-ahead (`done` ends it)."""
        async with self.store.lock(key, timeout, read=read) as values:
            if read:
                self._read.set(dict(zip(read, values, strict=True)))
            yield values

    async def close(self) -> None:
        await self.store.close()

    def __getattr__(self, name: str) -> Any:  # a store's own extras (the live feed's streams)
        return getattr(self.store, name)
