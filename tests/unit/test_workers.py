"""Several workers: one scheduler leader by a lease (bot/leader.py), per-station assignment locks,
the supervisor (bot/workers.py) restarting a dead worker and refusing stores that cannot be shared."""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time

import pytest

from bot.core import keys
from bot.leader import SchedulerLeader
from bot.settings import Settings
from bot.workers import Supervisor, WorkersNeedSharedStores, check_shareable
from fakes import FixedClock, draft, make_services, seed
from handlers.tickets import submit_report
from storage.kv import MemoryKeyValueStore


async def test_one_leader_at_a_time_and_a_clean_stop_hands_over_at_once() -> None:
    kv = MemoryKeyValueStore()
    first, second = (SchedulerLeader(kv, lease=0.3, renew_every=0.05) for _ in range(2))
    await first.start()
    await second.start()
    await asyncio.sleep(0.5)  # renewals keep it: more than a lease later, still the first
    assert (first.is_leader, second.is_leader) == (True, False)
    assert await kv.get(keys.SCHEDULER_LEADER) == first.identity
    await first.stop()
    await asyncio.sleep(0.15)
    assert (first.is_leader, second.is_leader) == (False, True)
    await second.stop()
    await asyncio.sleep(0.01)  # let go: it expires in a millisecond
    assert await kv.get(keys.SCHEDULER_LEADER) is None


async def test_a_dead_leader_is_replaced_once_its_lease_ran_out() -> None:
    kv = MemoryKeyValueStore()
    dead, heir = SchedulerLeader(kv, lease=0.3, renew_every=0.05), SchedulerLeader(kv, lease=0.3, renew_every=0.05)
    await dead.start()
    await heir.start()
    assert dead._task is not None
    dead._task.cancel()  # dies without letting go
    await asyncio.sleep(0.15)
    assert not heir.is_leader  # the lease still runs
    await asyncio.sleep(0.4)
    assert heir.is_leader
    await heir.stop()


async def test_a_held_assignment_lock_at_one_station_does_not_hold_up_another() -> None:
    services = make_services(FixedClock())
    await seed(services)
    elsewhere = await submit_report(services, draft(place="黎里社区", category="其他"))
    async with services.kv.lock(keys.assign_lock(elsewhere.station_code)):
        ticket = await asyncio.wait_for(submit_report(services, draft()), 2)
    assert ticket.station_code != elsewhere.station_code


def test_several_workers_need_postgresql_and_redis() -> None:
    with pytest.raises(WorkersNeedSharedStores, match="PostgreSQL"):
        check_shareable(Settings(database_url="sqlite+aiosqlite:///x.db", redis_url="redis://r"), 2)
    with pytest.raises(WorkersNeedSharedStores, match="Redis：未设置"):
        check_shareable(Settings(database_url="postgresql+asyncpg://u@h/db", redis_url=""), 2)
    check_shareable(Settings(database_url="postgresql+asyncpg://u@h/db", redis_url="redis://r"), 2)
    check_shareable(Settings(database_url="sqlite+aiosqlite:///x.db", redis_url=""), 1)


def _note_and_sleep(path: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(60)


def test_the_supervisor_restarts_a_dead_worker_and_stops_all_on_sigterm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    notes = tmp_path / "pids"
    supervisor = Supervisor(2, "127.0.0.1", 0, target=lambda _h, _p: _note_and_sleep(str(notes)), poll_every=0.05)
    ctx = multiprocessing.get_context("fork")
    parent = ctx.Process(target=supervisor.run)
    parent.start()

    def pids() -> list[int]:
        return [int(p) for p in notes.read_text().split()] if notes.exists() else []

    def wait(count: int) -> list[int]:
        deadline = time.monotonic() + 20
        while len(pids()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return pids()

    try:
        first = wait(2)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        assert len(wait(3)) == 3  # a new worker instead of the dead one
        os.kill(parent.pid, signal.SIGTERM)
        parent.join(20)
        assert parent.exitcode == 0
        for pid in pids():
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if parent.is_alive():
            parent.kill()
