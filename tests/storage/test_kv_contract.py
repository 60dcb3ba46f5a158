"""One contract for bot.core.ports.KeyValueStore, run against the memory store and real Redis."""
from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

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
        shared: list[MemoryKeyValueStore] = []

        def maker(**lease):  # the first call's lease settings hold for the one shared store
            if not shared:
                shared.append(MemoryKeyValueStore(**lease))
            return shared[0]

    else:
        prefix = request.getfixturevalue("redis_prefix")

        def maker(**lease):
            store = RedisKeyValueStore(REDIS_URL, prefix, **lease)
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


async def test_lock_gives_what_it_was_asked_to_read_when_taken(stores) -> None:
    holder, waiter = stores(), stores()
    await holder.set("scene", "form")
    async with holder.lock("citizen:o1", timeout=1, read=["scene", "missing"]) as values:
        assert values == ["form", None]
        entered = asyncio.create_task(_lock_and_read(waiter, "citizen:o1", ["scene"]))
        await asyncio.sleep(0.05)
        await holder.set("scene", "filed")  # before the waiter gets the lock: it reads this
    assert await asyncio.wait_for(entered, 5) == ["filed"]
    async with holder.lock("citizen:o1", timeout=1) as nothing:
        assert nothing == []


async def _lock_and_read(store, key: str, read: list[str]) -> list[str | None]:
    async with store.lock(key, timeout=5, read=read) as values:
        return values


def stop_renewing(store) -> None:
    """What a worker's death does to its locks: nobody renews their leases any more."""
    for task in list(store._renewals):
        task.cancel()


async def test_lock_lease_lapses_when_its_holder_stops_renewing(stores) -> None:
    lease = {"lock_lease": 0.3, "lock_renew_every": 0.05}
    dead, waiter, third = stores(**lease), stores(**lease), stores(**lease)
    held = dead.lock("citizen:o1", timeout=1)
    await held.__aenter__()  # a worker that dies inside the critical section never exits it
    stop_renewing(dead)
    async with waiter.lock("citizen:o1", timeout=10):
        await held.__aexit__(None, None, None)  # the dead one's late exit must not free our lock
        with pytest.raises(LockTimeout):
            async with third.lock("citizen:o1", timeout=0.1):
                pytest.fail("entered a held lock")


async def test_lock_renewed_while_its_holder_is_alive(stores) -> None:
    lease = {"lock_lease": 0.5, "lock_renew_every": 0.1}
    holder, waiter = stores(**lease), stores(**lease)
    async with holder.lock("citizen:o1", timeout=1):
        with pytest.raises(LockTimeout):  # waits more than two leases: the holder keeps renewing
            async with waiter.lock("citizen:o1", timeout=1.2):
                pytest.fail("entered a held lock")
    async with waiter.lock("citizen:o1", timeout=1):
        pass


async def test_extend_only_while_the_value_is_held(kv) -> None:
    await kv.set("pending", "p", ttl=0.2)
    assert await kv.extend("pending", "p", ttl=600) is True
    assert await kv.extend("pending", "someone else", ttl=600) is False
    assert await kv.extend("missing", "p", ttl=600) is False
    await kv.set("probe", "p", ttl=0.2)

    async def probe_gone() -> bool:
        return await kv.get("probe") is None

    assert await eventually(probe_gone)
    assert await kv.get("pending") == "p"
    assert await kv.get("missing") is None  # extend never creates a key


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
async def test_redis_lock_of_a_killed_process_frees_after_its_lease(redis_prefix, redis_client, tmp_path) -> None:
    """A real worker process takes the lock and is killed -9: nobody renews it any more."""
    script = (
        "import asyncio, sys\n"
        "from storage.kv import RedisKeyValueStore\n"
        "async def main():\n"
        f"    store = RedisKeyValueStore({REDIS_URL!r}, {redis_prefix!r}, lock_lease=0.5, lock_renew_every=0.1)\n"
        "    async with store.lock('job', timeout=5):\n"
        "        print('held', flush=True)\n"
        "        await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE,
                                                cwd=str(Path(__file__).resolve().parents[2]))
    survivor = RedisKeyValueStore(REDIS_URL, redis_prefix)
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"held"
        with pytest.raises(LockTimeout):  # alive, it renews well past its 0.5 s lease
            async with survivor.lock("job", timeout=1.5):
                pass
        proc.kill()
        await proc.wait()
        async with survivor.lock("job", timeout=10):  # free within one lease of the kill
            pass
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await survivor.close()


@pytest.mark.redis
async def test_redis_lock_expired_while_held_does_not_break_release(redis_prefix, redis_client) -> None:
    slow = RedisKeyValueStore(REDIS_URL, redis_prefix, lock_lease=0.05, lock_renew_every=60)
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
    for i in range(1000):
        await store.set(f"wechat:dedupe:msg:{i}", "1", ttl=600)
    await store.set("window", "1", ttl=600)
    now[0] += 300
    await store.set("window", "2", ttl=600)  # set again: it lives on past its first expiry
    await store.set("forever", "1")
    now[0] += 301
    await store.set("fresh", "1", ttl=600)  # the write that sweeps
    assert set(store._data) == {"window", "forever", "fresh"}
    now[0] += 600
    await store.set("later", "1", ttl=600)
    assert set(store._data) == {"forever", "later"}
    assert len(store._expiries) == 1  # one entry a key with an expiry, none left of the swept


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


async def test_claim_takes_a_key_once_and_says_whether_it_was_seen(kv) -> None:
    args = dict(seen_key="seen:m1", seen_ttl=60, epoch_key="epoch")
    first = await kv.claim("claim:m1", "p", 5, **args)
    assert first.owned and first.first_seen
    assert await kv.get("claim:m1") == "p"
    again = await kv.claim("claim:m1", "p", 5, **args)  # held: not ours
    assert not again.owned and not again.first_seen
    await kv.delete("claim:m1")  # the owner's lease ran out (it died)
    retry = await kv.claim("claim:m1", "p", 5, **args)
    assert retry.owned and not retry.first_seen  # owned, but seen before: a retry
    assert first.epoch == again.epoch == retry.epoch  # the store's epoch is kept


async def test_claim_epoch_is_set_once_and_starts_over_when_the_store_lost_it(kv) -> None:
    import time

    before = time.time()
    epoch = (await kv.claim("claim:a", "p", 5, seen_key="seen:a", seen_ttl=60, epoch_key="epoch")).epoch
    assert before - 1 <= epoch <= time.time() + 1
    await kv.set("epoch", repr(before - 3600))  # a store whose claims began an hour ago
    assert (await kv.claim("claim:b", "p", 5, seen_key="seen:b", seen_ttl=60, epoch_key="epoch")).epoch == before - 3600
    await kv.delete("epoch")  # came back empty
    assert (await kv.claim("claim:c", "p", 5, seen_key="seen:c", seen_ttl=60, epoch_key="epoch")).epoch >= before


async def test_get_many_reads_values_in_order(kv) -> None:
    await kv.set("m:a", "甲")
    await kv.set("m:c", "丙", ttl=60)
    assert await kv.get_many(["m:a", "m:b", "m:c"]) == ["甲", None, "丙"]
    assert await kv.get_many([]) == []


async def test_batch_sets_then_deletes_then_reads(kv) -> None:
    await kv.set("b:gone", "x")
    await kv.set("b:kept", "乙")
    got = await kv.batch(sets=[("b:new", "甲", 60), ("b:forever", "丁", None)], deletes=["b:gone", "b:none"],
                         gets=["b:new", "b:gone", "b:kept", "b:missing"])
    assert got == ["甲", None, "乙", None]
    assert await kv.get("b:forever") == "丁"
    assert await kv.batch(sets=[("b:short", "v", 0.05)]) == []
    assert await kv.batch() == []
    await asyncio.sleep(0.1)
    assert await kv.get("b:short") is None
