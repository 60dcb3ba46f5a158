"""One contract for bot.core.ports.KeyValueStore, run against the memory store and real Redis."""
from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

import pytest

from bot.settings import Settings
from storage.kv import LockTimeout, MemoryKeyValueStore, RedisKeyValueStore, build_kv

StoreMaker = Callable[[], object]
REDIS_URL = os.environ.get("ZTC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")  # as in tests/conftest.py


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[StoreMaker]:
    """Yields a maker: each call gives a view on the same shared store, as another worker would see it
    (the memory store is one process's, so every "worker" shares the instance)."""
    made: list = []
    if request.param == "memory":
        shared = MemoryKeyValueStore()

        def maker():
            return shared

    else:
        prefix = request.getfixturevalue("redis_prefix")

        def maker():
            store = RedisKeyValueStore(REDIS_URL, prefix)
            made.append(store)
            return store

    yield maker
    for store in made:
        await store.close()
    if request.param == "redis":
        import redis.asyncio as redis

        client = redis.from_url(REDIS_URL)
        async for key in client.scan_iter(match=f"{prefix}*"):  # only this test's keys
            await client.delete(key)
        await client.aclose()


@pytest.fixture
def kv(stores: StoreMaker):
    return stores()


async def eventually(predicate, limit: float = 5.0) -> bool:
    """Polls an async predicate; expiry is asserted as an outcome, never as a duration."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_get_missing_is_none(kv) -> None:
    assert await kv.get("nothing-here") is None


async def test_set_get_overwrite_delete(kv) -> None:
    await kv.set("k", "一")
    assert await kv.get("k") == "一"
    await kv.set("k", "二")
    assert await kv.get("k") == "二"
    await kv.delete("k")
    assert await kv.get("k") is None
    await kv.delete("k")  # deleting a missing key is fine


async def test_values_are_shared_between_workers(stores) -> None:
    a, b = stores(), stores()
    await a.set("shared", "v")
    assert await b.get("shared") == "v"


async def test_ttl_expires(kv) -> None:
    await kv.set("short", "v", ttl=0.05)
    await kv.set("long", "v", ttl=600)
    await kv.set("forever", "v")

    async def gone() -> bool:
        return await kv.get("short") is None

    assert await eventually(gone)
    assert await kv.get("long") == "v"
    assert await kv.get("forever") == "v"


async def test_set_without_ttl_clears_previous_ttl(kv) -> None:
    await kv.set("k", "old", ttl=0.05)
    await kv.set("k", "new")
    await kv.set("probe", "p", ttl=0.05)

    async def probe_gone() -> bool:
        return await kv.get("probe") is None

    assert await eventually(probe_gone)
    assert await kv.get("k") == "new"


async def test_set_if_absent(kv) -> None:
    assert await kv.set_if_absent("dedupe", "first", ttl=600) is True
    assert await kv.set_if_absent("dedupe", "second", ttl=600) is False
    assert await kv.get("dedupe") == "first"
    await kv.delete("dedupe")
    assert await kv.set_if_absent("dedupe", "third", ttl=600) is True


async def test_set_if_absent_after_expiry(kv) -> None:
    assert await kv.set_if_absent("once", "a", ttl=0.05) is True

    async def free_again() -> bool:
        return await kv.set_if_absent("once", "b", ttl=600)

    assert await eventually(free_again)
    assert await kv.get("once") == "b"


async def test_set_if_absent_concurrent_only_one_wins(stores) -> None:
    workers = [stores() for _ in range(10)]
    results = await asyncio.gather(*(w.set_if_absent("race", str(i), ttl=600) for i, w in enumerate(workers)))
    assert sorted(results) == [False] * 9 + [True]
    winner = results.index(True)
    assert await workers[0].get("race") == str(winner)


async def test_lock_is_mutually_exclusive(stores) -> None:
    inside = 0
    peak = 0
    order: list[int] = []

    async def worker(i: int) -> None:
        nonlocal inside, peak
        async with stores().lock("citizen:o1", timeout=10):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            order.append(i)
            inside -= 1

    await asyncio.gather(*(worker(i) for i in range(5)))
    assert peak == 1
    assert sorted(order) == list(range(5))


async def test_lock_timeout_raises(stores) -> None:
    holder, waiter = stores(), stores()
    async with holder.lock("busy", timeout=1):
        with pytest.raises(LockTimeout):
            async with waiter.lock("busy", timeout=0.1):
                pytest.fail("entered a held lock")
    # released: it can be taken again at once
    async with waiter.lock("busy", timeout=1):
        pass


async def test_lock_released_when_body_raises(kv) -> None:
    with pytest.raises(RuntimeError):
        async with kv.lock("k", timeout=1):
            raise RuntimeError("boom")
    async with kv.lock("k", timeout=1):
        pass


async def test_locks_on_different_keys_are_independent(kv) -> None:
    async with kv.lock("a", timeout=1):
        async with kv.lock("b", timeout=1):
            pass


async def test_lock_does_not_touch_value_of_same_key(kv) -> None:
    await kv.set("token", "abc")
    async with kv.lock("token", timeout=1):
        assert await kv.get("token") == "abc"
    assert await kv.get("token") == "abc"


# --- Redis specifics -------------------------------------------------------------------------------
@pytest.mark.redis
async def test_redis_keys_live_under_prefix(redis_prefix, redis_client) -> None:
    store = RedisKeyValueStore(REDIS_URL, redis_prefix)
    try:
        await store.set("k", "v")
        assert await redis_client.get(f"{redis_prefix}k") == b"v"
        other = RedisKeyValueStore(REDIS_URL, redis_prefix + "other:")
        try:
            assert await other.get("k") is None
        finally:
            await other.close()
    finally:
        await store.close()


@pytest.mark.redis
async def test_redis_lock_of_crashed_worker_expires(redis_prefix, redis_client) -> None:
    crashed = RedisKeyValueStore(REDIS_URL, redis_prefix, lock_ttl=0.2)
    survivor = RedisKeyValueStore(REDIS_URL, redis_prefix, lock_ttl=0.2)
    try:
        lock = crashed.lock("job", timeout=1)
        await lock.__aenter__()  # a worker that dies inside the critical section never exits it
        async with survivor.lock("job", timeout=10):
            pass
    finally:
        await crashed.close()
        await survivor.close()


@pytest.mark.redis
async def test_redis_lock_expired_while_held_does_not_break_release(redis_prefix, redis_client) -> None:
    slow = RedisKeyValueStore(REDIS_URL, redis_prefix, lock_ttl=0.05)
    try:
        async with slow.lock("job", timeout=1):
            async def expired() -> bool:
                return not await redis_client.exists(f"{redis_prefix}lock:job")

            assert await eventually(expired)
        async with slow.lock("job", timeout=1):
            pass
    finally:
        await slow.close()


async def test_build_kv_memory_without_redis_url() -> None:
    store = build_kv(Settings(redis_url=""))
    assert isinstance(store, MemoryKeyValueStore)


@pytest.mark.redis
async def test_build_kv_redis_when_configured(redis_prefix, redis_client) -> None:
    store = build_kv(Settings(redis_url=REDIS_URL, redis_prefix=redis_prefix))
    try:
        assert isinstance(store, RedisKeyValueStore)
        await store.set("k", "v")
        assert await redis_client.get(f"{redis_prefix}k") == b"v"
    finally:
        await store.close()


async def test_lock_timeout_names_the_key_without_the_full_openid(stores: StoreMaker) -> None:
    holder, waiter = stores(), stores()
    openid = "oCitizenOpenid0123456789"
    async with holder.lock(f"lock:user:{openid}", timeout=1):
        with pytest.raises(LockTimeout) as caught:
            async with waiter.lock(f"lock:user:{openid}", timeout=0.05):
                pass
    assert "lock:user:" in str(caught.value) and openid not in str(caught.value)


# --- the memory store's own housekeeping (one process, no server to expire keys) ------------------
async def test_memory_store_sweeps_keys_that_are_never_read_again(monkeypatch) -> None:
    import storage.kv as kv

    now = [1000.0]
    monkeypatch.setattr(kv.time, "monotonic", lambda: now[0])
    store = MemoryKeyValueStore()
    for i in range(kv.SWEEP_EVERY - 1):
        await store.set(f"wechat:dedupe:msg:{i}", "1", ttl=600)
    now[0] += 601
    await store.set("fresh", "1", ttl=600)  # the write that triggers a sweep
    assert set(store._data) == {"fresh"}


async def test_memory_store_drops_locks_nobody_holds_or_awaits() -> None:
    store = MemoryKeyValueStore()
    async with store.lock("lock:user:a"):
        waiter = asyncio.create_task(_hold_briefly(store, "lock:user:a"))
        await asyncio.sleep(0)
        assert "lock:user:a" in store._locks
    await waiter
    with pytest.raises(LockTimeout):
        async with store.lock("lock:user:b"):
            async with store.lock("lock:user:b", timeout=0.01):
                pass
    assert store._locks == {}


async def _hold_briefly(store: MemoryKeyValueStore, key: str) -> None:
    async with store.lock(key):
        await asyncio.sleep(0)
