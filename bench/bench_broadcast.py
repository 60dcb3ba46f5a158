"""Broadcast benchmark: the plan for 100,000 followers (target: under 2 s), as the pure planner
and as the whole use case (followers read, window and budget looked up, rows written) on the
in-memory stores; then the sends of that broadcast paced within WeChat's rate limit
(handlers/pacing.py: settings.broadcast_calls_per_minute, WeChat refuses more than 60 mass
calls a minute), on a virtual clock at the configured rate and for real at a fast test rate, by
two senders at once. Prints the numbers; no pass/fail (the machine is shared).

    .venv/bin/python bench/bench_broadcast.py [--followers 100000] [--per-minute 30] [--plan-only]
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
from handlers.broadcasts import BroadcastRequest, create_broadcast, send_pending  # noqa: E402
from handlers.pacing import MassPacer  # noqa: E402
from storage.kv import MemoryKeyValueStore  # noqa: E402
from storage.memory import MemoryUnitOfWorkFactory  # noqa: E402

NOW = datetime(2026, 12, 7, 10, 0)


class Clock:
    def now(self) -> datetime:
        return NOW


def pure_plan(n: int) -> float:
    rng = random.Random(7)
    recipients = [Recipient(f"o{i:07d}", following_account=rng.random() > 0.02, in_window=rng.random() < 0.05,
                            mass_used=rng.choice((0, 0, 0, 1, 2, 4)), subscribed=rng.random() < 0.1)
                  for i in range(n)]
    started = time.perf_counter()
    plan = plan_broadcast(recipients, subscribe=True)  # a reception's announcement: 订阅通知 for 10 %
    elapsed = time.perf_counter() - started
    print(f"pure plan, {n:,} followers: {elapsed * 1000:.0f} ms — {plan.summary()}")
    return elapsed


class RecordingGateway:
    """Takes the mass calls, noting when each started."""

    def __init__(self, now: object = time.time) -> None:
        self.now = now
        self.calls: list[tuple[float, int]] = []

    async def mass_send(self, openids, text, clientmsgid):  # type: ignore[no-untyped-def]
        self.calls.append((self.now(), len(openids)))  # type: ignore[operator]
        return f"m{len(self.calls)}"

    async def mass_send_tag(self, tag_id, text, clientmsgid):  # type: ignore[no-untyped-def]
        return await self.mass_send((), text, clientmsgid)


def most_in_a_minute(times: list[float]) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t < start + 60) for i, start in enumerate(times)), default=0)


async def paced_sends(n: int, per_minute: float) -> None:
    """The broadcast's calls through the pacer: one sender on a virtual clock at `per_minute`
    (the configured rate), then two senders at once for real at 600 a minute (0.1 s apart)."""
    virtual = [0.0]

    async def advance(seconds: float) -> None:
        virtual[0] += seconds

    for label, clock, sleep, rate, senders in (("virtual clock", lambda: virtual[0], advance, per_minute, 1),
                                               ("real clock", time.time, None, 600.0, 2)):
        services, _ = await _services_with_followers(n)
        services.settings.broadcast_batch = 2_000  # more calls than a real one would make, to see the pace
        broadcast, _ = await create_broadcast(services, BroadcastRequest("town", "盛泽镇", "周六上午有代表接待"))
        gateway = RecordingGateway(clock)
        kw = {"sleep": sleep} if sleep else {}
        pacers = [MassPacer(services.kv, rate, now=clock, **kw) for _ in range(senders)]
        started = time.perf_counter()
        await asyncio.gather(*(send_pending(services, gateway, broadcast.id, pacer=p) for p in pacers))  # type: ignore[arg-type]
        wall = time.perf_counter() - started
        times = [t for t, _ in gateway.calls]
        gaps = [b - a for a, b in zip(sorted(times), sorted(times)[1:])]
        print(f"paced sends ({label}, {rate:g} a minute, {senders} sender(s)): {len(times)} calls for "
              f"{sum(k for _, k in gateway.calls):,} people over {max(times) - min(times):.1f} s "
              f"(wall {wall:.1f} s); smallest gap {min(gaps):.3f} s (interval {60 / rate:.3f} s); "
              f"most calls in any 60 s: {most_in_a_minute(times)} (WeChat allows 60)")


async def _services_with_followers(n: int) -> tuple[object, object]:
    clock = Clock()
    uow = MemoryUnitOfWorkFactory(clock)
    services = build_services(Settings(_env_file=None), uow=uow, kv=MemoryKeyValueStore(), nlu=None,  # type: ignore[arg-type]
                              clock=clock)
    async with services.uow() as unit:
        await unit.stations.upsert(Station("SZ-HOME", "盛泽镇代表之家", StationKind.HOME, "盛泽镇"))
        for i in range(n):
            await unit.follows.follow(Follow(f"o{i:07d}", "SZ-HOME", NOW))
        await unit.commit()
    return services, uow


async def use_case(n: int) -> float:
    services, _ = await _services_with_followers(n)
    started = time.perf_counter()
    _, plan = await create_broadcast(services, BroadcastRequest("town", "盛泽镇", "周六上午有代表接待", dry_run=True))
    elapsed = time.perf_counter() - started
    print(f"use case (dry run, memory stores), {n:,} followers: {elapsed * 1000:.0f} ms — "
          f"{plan.count(Channel.MASS_OPENIDS):,} by openid list in {len(plan.sends)} calls")
    return elapsed


async def announcement(n: int) -> float:
    """A reception's announcement, a tenth of the followers with a reception 订阅通知 left."""
    from datetime import time as clock_time

    from bot.core.people import Deputy
    from bot.core.receptions import Reception
    from handlers import channels
    from handlers.receptions import create_reception

    services, _ = await _services_with_followers(n)
    services.settings.subscribe_id_reception = "tpl-reception"  # type: ignore[attr-defined]
    for i in range(0, n, 10):
        await channels.grant_subscription(services, f"o{i:07d}", "tpl-reception")  # type: ignore[arg-type]
    async with services.uow() as unit:  # type: ignore[attr-defined]
        await unit.deputies.upsert(Deputy("D001", "王晓梅", "区", "SZ-HOME"))
        await unit.commit()
    reception = await create_reception(services, Reception(  # type: ignore[arg-type]
        "SZ-HOME", ("D001",), NOW.date(), clock_time(14), clock_time(16), "主题接待：养老服务", "盛泽镇代表之家"))
    started = time.perf_counter()
    _, plan = await create_broadcast(services, BroadcastRequest("town", "盛泽镇", reception_id=reception.id,  # type: ignore[arg-type]
                                                                dry_run=True))
    elapsed = time.perf_counter() - started
    print(f"use case (reception announcement, dry run), {n:,} followers: {elapsed * 1000:.0f} ms — "
          f"{plan.count(Channel.SUBSCRIBE):,} by 订阅通知, {plan.count(Channel.MASS_OPENIDS):,} by openid list")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--followers", type=int, default=100_000)
    parser.add_argument("--plan-only", action="store_true", help="skip the paced sends")
    parser.add_argument("--per-minute", type=float, default=Settings(_env_file=None).broadcast_calls_per_minute)
    args = parser.parse_args()
    pure = pure_plan(args.followers)
    whole = asyncio.run(use_case(args.followers))
    announced = asyncio.run(announcement(args.followers))
    print(f"target under 2 s: pure plan {'met' if pure < 2 else 'MISSED'}, use case {'met' if whole < 2 else 'MISSED'}, "
          f"announcement {'met' if announced < 2 else 'MISSED'}")
    if not args.plan_only:
        asyncio.run(paced_sends(args.followers, args.per_minute))


if __name__ == "__main__":
    main()
