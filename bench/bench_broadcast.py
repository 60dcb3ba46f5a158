"""Broadcast plan benchmark: the plan for 100,000 followers (target: under 2 s), as the pure
planner and as the whole use case (followers read, window and budget looked up, rows written) on
the in-memory stores. Prints the times; no pass/fail (the machine is shared).

    .venv/bin/python bench/bench_broadcast.py [--followers 100000]
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.bootstrap import build_services  # noqa: E402
from bot.core.broadcasts import Channel, Recipient, plan_broadcast  # noqa: E402
from bot.core.people import Station, StationKind  # noqa: E402
from bot.core.receptions import Follow  # noqa: E402
from bot.settings import Settings  # noqa: E402
from handlers.broadcasts import BroadcastRequest, create_broadcast  # noqa: E402
from storage.kv import MemoryKeyValueStore  # noqa: E402
from storage.memory import MemoryUnitOfWorkFactory  # noqa: E402

NOW = datetime(2026, 12, 7, 10, 0)


class Clock:
    def now(self) -> datetime:
        return NOW


def pure_plan(n: int) -> float:
    rng = random.Random(7)
    recipients = [Recipient(f"o{i:07d}", following_account=rng.random() > 0.02, in_window=rng.random() < 0.05,
                            mass_used=rng.choice((0, 0, 0, 1, 2, 4))) for i in range(n)]
    started = time.perf_counter()
    plan = plan_broadcast(recipients)
    elapsed = time.perf_counter() - started
    print(f"pure plan, {n:,} followers: {elapsed * 1000:.0f} ms — {plan.summary()}")
    return elapsed


async def use_case(n: int) -> float:
    clock = Clock()
    uow = MemoryUnitOfWorkFactory(clock)
    services = build_services(Settings(_env_file=None), uow=uow, kv=MemoryKeyValueStore(), nlu=None,  # type: ignore[arg-type]
                              clock=clock)
    async with services.uow() as unit:
        await unit.stations.upsert(Station("SZ-HOME", "盛泽镇代表之家", StationKind.HOME, "盛泽镇"))
        for i in range(n):
            await unit.follows.follow(Follow(f"o{i:07d}", "SZ-HOME", NOW))
        await unit.commit()
    started = time.perf_counter()
    _, plan = await create_broadcast(services, BroadcastRequest("town", "盛泽镇", "周六上午有代表接待", dry_run=True))
    elapsed = time.perf_counter() - started
    print(f"use case (dry run, memory stores), {n:,} followers: {elapsed * 1000:.0f} ms — "
          f"{plan.count(Channel.MASS_OPENIDS):,} by openid list in {len(plan.sends)} calls")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, default=100_000)
    args = parser.parse_args()
    pure = pure_plan(args.followers)
    whole = asyncio.run(use_case(args.followers))
    print(f"target under 2 s: pure plan {'met' if pure < 2 else 'MISSED'}, use case {'met' if whole < 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
