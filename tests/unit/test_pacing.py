"""Mass calls are paced: whichever of several senders sharing the key-value store makes them, they
start at least 60 / per_minute seconds apart, and the first one at once."""
from __future__ import annotations

import asyncio
import time

import pytest

from handlers.pacing import MassPacer
from storage.kv import MemoryKeyValueStore


async def test_two_senders_sharing_the_store_keep_the_interval() -> None:
    kv = MemoryKeyValueStore()
    a, b = MassPacer(kv, per_minute=600), MassPacer(kv, per_minute=600)  # 0.1 s apart
    started = time.time()
    starts: list[float] = []
    woke: list[float] = []

    async def sender(pacer: MassPacer) -> None:
        for _ in range(5):
            starts.append(await pacer.wait())
            woke.append(time.time())

    await asyncio.gather(sender(a), sender(b))
    starts.sort()
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
    assert starts[0] - started < 0.05  # nothing starts before: the first call goes at once
    assert len(starts) == 10 and min(gaps) >= 0.0999, gaps
    assert max(woke) - started >= 0.89


async def test_each_start_is_an_interval_after_the_last() -> None:
    now = [1000.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # virtual time moves while it sleeps
        slept.append(seconds)
        now[0] += seconds

    pacer = MassPacer(MemoryKeyValueStore(), per_minute=30, now=lambda: now[0], sleep=sleep)
    assert [await pacer.wait() for _ in range(3)] == [1000.0, 1002.0, 1004.0]
    assert slept == [2.0, 2.0]
    now[0] += 0.5  # the caller took a while: the next one waits only the rest
    assert await pacer.wait() == 1006.0 and slept[-1] == 1.5
    now[0] = 1100.0  # long after: free again
    assert await pacer.wait() == 1100.0


def test_the_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MassPacer(MemoryKeyValueStore(), per_minute=0)
