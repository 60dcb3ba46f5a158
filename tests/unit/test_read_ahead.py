"""The message's key-value reads in one round trip (handlers/read_ahead.py), and the dispatcher
reading ahead what its routers declare."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.core import keys
from handlers.read_ahead import ReadAheadKV
from storage.kv import MemoryKeyValueStore


class CountingKV(MemoryKeyValueStore):
    """Counts the reads that reach the store."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, ...]] = []
        self._inside = False  # the memory store's get_many is a get per key: one read

    async def get(self, key: str) -> str | None:
        if not self._inside:
            self.reads.append((key,))
        return await super().get(key)

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if keys:  # the memory store's batch reads no keys when asked for none
            self.reads.append(tuple(keys))
        self._inside = True
        try:
            return await super().get_many(keys)
        finally:
            self._inside = False


async def test_reads_of_read_ahead_keys_cost_no_round_trip_and_writes_are_never_stale() -> None:
    store = CountingKV()
    await store.set("a", "1")
    kv = ReadAheadKV(store)

    async def message() -> list[str | None]:
        async with kv.lock("user", read=["a", "b"]) as values:
            seen = [*values, await kv.get("a"), *(await kv.get_many(["b", "a"]))]
            await kv.set("a", "2")  # the handler's own write: its next read sees it
            seen.append(await kv.get("a"))
            await kv.batch(sets=[("b", "3", None)])
            seen.append(await kv.get("b"))
            kv.done()
        return seen

    assert await asyncio.create_task(message()) == ["1", None, "1", None, "1", "2", "3"]
    assert store.reads == [("a", "b"), ("a",), ("b",)]  # with the lock, then the two written keys


async def test_another_message_and_a_task_left_running_read_the_store() -> None:
    store = CountingKV()
    kv = ReadAheadKV(store)
    later = asyncio.Event()
    seen: list[str | None] = []

    async def left_running() -> None:  # started by the message, copies its context
        await later.wait()
        seen.append(await kv.get("a"))

    async def message() -> asyncio.Task[None]:
        async with kv.lock("user", read=["a"]):
            task = asyncio.create_task(left_running())
            kv.done()
        return task

    task = await asyncio.create_task(message())
    await store.set("a", "changed meanwhile")
    later.set()
    await task
    assert seen == ["changed meanwhile"]
    assert await kv.get("a") == "changed meanwhile"  # outside any message: the store


async def test_the_dispatcher_reads_a_citizens_keys_in_one_round_trip() -> None:
    from bot.bootstrap import build_services
    from bot.core.clock import SystemClock
    from bot.core.inbound import Inbound
    from bot.settings import Settings
    from handlers.chat import ROUTERS
    from handlers.chat.router import Dispatcher
    from storage.memory import MemoryUnitOfWorkFactory

    class NoNLU:
        async def parse(self, text: str):
            from bot.core.parse import ParseResult

            return ParseResult.fallback(text)

    store = CountingKV()
    await store.set(keys.STORE_EPOCH, (datetime.now() - timedelta(days=2)).isoformat())  # a store up for days
    services = build_services(Settings(), uow=MemoryUnitOfWorkFactory(), kv=store, nlu=NoNLU(), clock=SystemClock())
    dispatcher = Dispatcher(services, ROUTERS)
    reply = await dispatcher.handle(Inbound(openid="oCitizen1", kind="text", text="帮助", msg_id="1"))
    assert reply
    read = [key for keys_read in store.reads for key in keys_read]
    first = set(store.reads[0])
    assert {keys.scene("oCitizen1"), keys.not_a_deputy("oCitizen1"), keys.bound_deputies("oCitizen1"),
            keys.LIVE_KEYWORDS} <= first
    assert len(read) == len(set(read)), f"a key read twice: {store.reads}"
