"""Two worker processes behind one port (`serve --workers 2`) on PostgreSQL and a Redis of the test's
own, every request on a new connection so both get their share. Citizens file reports through
both, with WeChat's retries of each 是 sent at once (landing on either worker): no report lost, no
push doubled. The scheduler leader is killed with -9: another worker takes the lease within
seconds and runs the jobs at their normal triggers (a waiting ticket drained at second 0, a
reception reminder at second 30), each once, from one process."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from datetime import datetime, timedelta
from datetime import time as time_of_day
from typing import Any

import pytest
from harness import Rig, ticket_number

from bot.core.tickets import Ticket

pytestmark = pytest.mark.faults

TAKEOVER_WITHIN = 10.0  # lease 5 s + one renewal interval, with room for a busy machine
LOG_LINE = re.compile(r"^\S+ \S+ (\d+) (\w+) ([\w.]+): (.*)$", re.M)


def log_lines(rig: Rig, logger: str) -> list[tuple[int, str]]:
    """(pid, message) of each line of `logger` in the server log (workers log their pid)."""
    return [(int(pid), text) for pid, _, name, text in LOG_LINE.findall(rig.log_text()) if name == logger]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def serving_workers(rig: Rig, count: int, within: float = 60.0) -> set[int]:
    """The pids of `count` live workers that said they serve."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pids = {int(m.group(1)) for _, text in log_lines(rig, "bot.workers")
                if (m := re.match(r"worker pid (\d+) serving", text))}
        live = {p for p in pids if alive(p)}
        if len(live) >= count:
            return live
        await asyncio.sleep(0.2)
    raise AssertionError(f"{count} workers did not start:\n{rig.log_text()[-3000:]}")


async def leader_pid(rig: Rig) -> int | None:
    import redis.asyncio as redis

    client = redis.from_url(rig.redis.url, decode_responses=True)
    try:
        value = await client.get("ztc:scheduler:leader")
    finally:
        await client.aclose()
    return int(value.split(":")[1]) if value else None


async def file_through_both(rig: Rig, citizen: str) -> int:
    """The form, then 是 posted three times at once (the message and WeChat's retries)."""
    await rig.walk_form(citizen)
    confirm = rig.text_xml(citizen, "是")
    answers = await asyncio.gather(*(rig.post(confirm) for _ in range(3)))
    assert all(status == 200 for status, _ in answers), answers
    numbers = {ticket_number(reply) for _, reply in answers if reply}
    deadline = time.monotonic() + 15
    while not numbers - {None} and time.monotonic() < deadline:  # past the deadline: pushed
        numbers = {ticket_number(t) for t in rig.api.sent_texts(citizen)}
        await asyncio.sleep(0.2)
    assert len(numbers - {None}) == 1, answers
    return (numbers - {None}).pop()


async def add_waiting_ticket(rig: Rig) -> int:
    """A ticket in the station queue, as if filed while nobody was on duty: drain_queues takes it."""

    async def add(uow: Any) -> int:
        now = datetime.now()
        ticket = await uow.tickets.add(Ticket.file(
            citizen_openid="oCitizen_fault_workers_queue", category="市政设施", summary="井盖松动",
            place="江村", details="", station_code="SL-01", at=now))
        ticket.announce()
        await uow.commit()
        return ticket.number

    return await rig.query(add)


async def add_reception_in_half_an_hour(rig: Rig, topic: str) -> None:
    from bot.bootstrap import build_services
    from bot.core.clock import SystemClock
    from bot.core.receptions import Reception
    from bot.settings import Settings
    from handlers.receptions import create_reception
    from storage.kv import MemoryKeyValueStore

    clock = SystemClock()
    start = (clock.now() + timedelta(minutes=30)).replace(second=0, microsecond=0)
    if start.time() >= time_of_day(23, 30):  # its half hour must end that day: midnight, still within the hour
        start = datetime.combine(start.date() + timedelta(days=1), time_of_day(0, 0))
    factory = rig.uow_factory()
    try:
        services = build_services(Settings(), uow=factory, kv=MemoryKeyValueStore(), nlu=None,  # type: ignore[arg-type]
                                  clock=clock)
        await create_reception(services, Reception("SL-01", ("D001",), start.date(), start.time(),
                                                   (start + timedelta(minutes=30)).time(), topic, "江村村委会"))
    finally:
        await factory.dispose()


async def test_two_workers_one_port_one_scheduler_leader(make_rig: Any) -> None:
    rig: Rig = await make_rig(serve_args=["--workers", "2"], fresh_connections=True)
    first = await serving_workers(rig, 2)
    deputy = await rig.bind_deputy()

    # kill -9 the leader: the other worker takes the lease over within seconds
    old = await leader_pid(rig)
    assert old in first
    os.kill(old, signal.SIGKILL)
    killed_at = time.monotonic()
    new = old
    while new in (old, None) and time.monotonic() - killed_at < TAKEOVER_WITHIN:
        await asyncio.sleep(0.2)
        new = await leader_pid(rig)
    assert new not in (old, None), f"no new leader {TAKEOVER_WITHIN}s after kill -9 of {old}"
    assert alive(new)

    # work for the jobs, at their normal triggers (nothing runs them at the takeover)
    waiting = await add_waiting_ticket(rig)
    await add_reception_in_half_an_hour(rig, "主题接待：多进程测试")

    # meanwhile citizens file through both workers (the dead one was replaced by the supervisor)
    workers = await serving_workers(rig, 2)
    numbers = await asyncio.gather(*(file_through_both(rig, f"oCitizen_fault_workers_{i:04d}") for i in range(3)))
    served = {pid for pid, text in log_lines(rig, "aiohttp.access") if " POST /wechat " in text}
    assert len(served & workers) == 2, f"requests reached only {served & workers} of {workers}"
    for i, number in enumerate(numbers):
        filed = await rig.query(lambda uow, c=f"oCitizen_fault_workers_{i:04d}": uow.tickets.list_for_citizen(c))
        assert [t.number for t in filed] == [number]  # one ticket per citizen, whoever handled the retries

    # the jobs: the queue drained at second 0, the reminder at second 30, each once
    deadline = time.monotonic() + 75
    while time.monotonic() < deadline:
        texts = rig.api.sent_texts(deputy)
        if any(f"#{waiting}】" in t for t in texts) and any("多进程测试" in t for t in texts):
            break
        await asyncio.sleep(0.5)
    await rig.delivered()
    texts = rig.api.sent_texts(deputy)
    for number in (*numbers, waiting):
        assert sum(t.startswith(f"【新工单 #{number}】") for t in texts) == 1, (number, texts)
    assert sum("多进程测试" in t for t in texts) == 1, texts
    assert len(texts) == len(set(texts))  # nothing pushed twice to the deputy
    ran = {(pid, text.split(":")[0]) for pid, text in log_lines(rig, "bot.bootstrap") if text.startswith("scheduled job")}
    assert ran and {pid for pid, _ in ran} == {new}, ran  # only the new leader ran jobs
    assert {job for _, job in ran} >= {"scheduled job drain_queues", "scheduled job remind_receptions"}
