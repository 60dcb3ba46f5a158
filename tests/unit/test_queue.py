"""Station queues drain when a shift starts: same assignment policy, citizen and deputy told."""
from __future__ import annotations

from datetime import datetime

from bot.core.people import DISTRICT_QUEUE
from bot.core.tickets import TicketStatus
from fakes import (
    CITIZEN,
    CITIZEN_2,
    LI_OPENID,
    MONDAY_10,
    SHIFTS,
    ZHOU_OPENID,
    FixedClock,
    draft,
    get_ticket,
    make_services,
    outbox,
    seed,
    weekday_shift,
)
from handlers.queue import assign_waiting
from handlers.tickets import submit_report

HOME_REPORT = dict(place="黎里社区", category="其他")  # → LL-HOME, on duty Mondays 14–17 only


async def test_waiting_ticket_is_assigned_when_the_shift_starts() -> None:
    clock = FixedClock()
    services = make_services(clock)
    await seed(services)
    ticket = await submit_report(services, draft(**HOME_REPORT))
    assert ticket.status is TicketStatus.FILED
    before = len(await outbox(services))

    assert await assign_waiting(services) == 0  # still nobody on duty
    assert len(await outbox(services)) == before

    clock.set(datetime(2026, 12, 7, 14, 0))
    kicks = services.kick_delivery.count  # type: ignore[attr-defined]
    assert await assign_waiting(services) == 1

    stored = await get_ticket(services, ticket.number)
    assert (stored.status, stored.deputy_code) == (TicketStatus.ASSIGNED, "D003")
    assert stored.timeline[-1].kind == "assigned" and stored.timeline[-1].at == datetime(2026, 12, 7, 14, 0)
    new = (await outbox(services))[before:]
    citizen = [m for m in new if m.recipient_openid == CITIZEN]
    deputy = [m for m in new if m.recipient_openid == ZHOU_OPENID]
    assert len(new) == 2
    assert "周玉兰代表" in citizen[0].text and f"#{ticket.number}" in citizen[0].text
    assert f"新工单 #{ticket.number}" in deputy[0].text
    assert services.kick_delivery.count == kicks + 1  # type: ignore[attr-defined]

    assert await assign_waiting(services) == 0  # nothing twice


async def test_a_drain_spreads_tickets_round_robin_oldest_first() -> None:
    clock = FixedClock()
    services = make_services(clock)
    shifts = (*SHIFTS, weekday_shift("LL-HOME", "D002", 1, "14:00", "17:00"))
    await seed(services, shifts=shifts)
    numbers = []
    for i, who in enumerate((CITIZEN, CITIZEN_2, CITIZEN)):
        clock.set(MONDAY_10.replace(minute=i))
        numbers.append((await submit_report(services, draft(citizen_openid=who, **HOME_REPORT))).number)

    clock.set(datetime(2026, 12, 7, 14, 0))
    assert await assign_waiting(services) == 3
    assigned = [(await get_ticket(services, n)).deputy_code for n in numbers]
    assert assigned == ["D002", "D003", "D002"]
    assert await services.kv.get("rr:LL-HOME") == "D002"
    to_li = [m for m in await outbox(services) if m.recipient_openid == LI_OPENID]
    assert len(to_li) == 2  # his two assignment notices; queue notices went to LL-HOME's own staff
    assert all("新工单" in m.text for m in to_li)


async def test_a_drain_counts_tickets_the_deputies_already_have() -> None:
    clock = FixedClock()
    services = make_services(clock)
    shifts = (*SHIFTS, weekday_shift("LL-HOME", "D001", 1, "14:00", "17:00"))
    await seed(services, shifts=shifts)
    busy = await submit_report(services, draft())  # at 东村 10:00 → D001 has one open ticket
    assert busy.deputy_code == "D001"
    first = await submit_report(services, draft(**HOME_REPORT))
    second = await submit_report(services, draft(**HOME_REPORT))

    clock.set(datetime(2026, 12, 7, 14, 30))
    assert await assign_waiting(services) == 2
    # D003 has none, so takes the first; then both have one and round robin goes on from D003
    assert (await get_ticket(services, first.number)).deputy_code == "D003"
    assert (await get_ticket(services, second.number)).deputy_code == "D001"


async def test_stations_still_unstaffed_keep_waiting() -> None:
    clock = FixedClock()
    services = make_services(clock)
    await seed(services)
    home = await submit_report(services, draft(**HOME_REPORT))
    shengze = await submit_report(services, draft(place="盛泽镇舜湖路", category="其他"))  # Tuesdays only
    lost = await submit_report(services, draft(place="火星"))
    assert lost.station_code == DISTRICT_QUEUE

    clock.set(datetime(2026, 12, 7, 14, 0))
    assert await assign_waiting(services) == 1
    assert (await get_ticket(services, home.number)).status is TicketStatus.ASSIGNED
    assert (await get_ticket(services, shengze.number)).status is TicketStatus.FILED
    assert (await get_ticket(services, lost.number)).status is TicketStatus.FILED

    clock.set(datetime(2026, 12, 8, 9, 0))  # Tuesday: D004 at 盛泽 (not bound: no push, still assigned)
    assert await assign_waiting(services) == 1
    assert (await get_ticket(services, shengze.number)).deputy_code == "D004"
    async with services.uow() as uow:
        assert [t.number for t in await uow.tickets.waiting()] == [lost.number]

