"""One contract for the unit of work and every repository of bot.core.ports, run against memory,
SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta

import pytest

from bot.core.events import TicketAccepted, TicketAssigned
from bot.core.inbound import Inbound, InboundKind, LateInbound, ProcessedInbound
from bot.core.outbound import OutboxMessage, PushFailure
from bot.core.people import Citizen, Deputy, DutyShift, Station, StationKind
from bot.core.ports import ConcurrentUpdate
from bot.core.tickets import Attachment, Ticket, TicketBrief, TicketStatus, TimelineEntry

T0 = datetime(2026, 12, 1, 9, 30)


def station(code: str = "S01", **kw) -> Station:
    base = dict(
        code=code,
        name="松陵街道代表之家",
        kind=StationKind.HOME,
        town="松陵",
        address="松陵镇中山路1号",
        specialties=("城乡建设", "民政"),
        places=("江兴社区", "梅里村"),
    )
    base.update(kw)
    return Station(**base)


def deputy(code: str = "D001", station_code: str = "S01", **kw) -> Deputy:
    base = dict(code=code, name="张三", level="区", station_code=station_code, phone="13800000000")
    base.update(kw)
    return Deputy(**base)


def ticket(openid: str = "citizen-1", station_code: str = "S01", at: datetime = T0, **kw) -> Ticket:
    base = dict(
        number=0,
        citizen_openid=openid,
        category="城乡建设",
        summary="村口路灯坏了一个星期",
        place="松陵 江兴社区",
        details="晚上很黑，老人出门不安全",
        station_code=station_code,
        created_at=at,
        phone="13912345678",
        share_contact=True,
        attachments=[Attachment("image", media_id="m1", url="http://x/1.jpg"), Attachment("voice", "m2", text="路灯坏了")],
        timeline=[TimelineEntry(at, "filed", "citizen")],
    )
    base.update(kw)
    return Ticket(**base)


async def add_ticket(factory, **kw) -> Ticket:
    async with factory() as uow:
        t = await uow.tickets.add(ticket(**kw))
        await uow.commit()
    return t


# --- unit of work ----------------------------------------------------------------------------------
@pytest.mark.parametrize("change", ["assign", "note"])
async def test_concurrent_ticket_saves_raise_concurrent_update(uow_factory, backend, change) -> None:
    """The version check: of two units of work that read the same ticket, the second to save
    gets ConcurrentUpdate (the port's exception, whatever the storage) and overwrites nothing,
    also when only the timeline grew (a citizen's note)."""
    if backend[0] == "sqlite":
        pytest.skip("SQLite serialises units of work; the conflict cannot arise")

    def apply(t: Ticket, who: str) -> None:
        if change == "assign":
            t.assign(who, T0)
        else:
            t.add_citizen_note(f"来自 {who}", T0)

    number = (await add_ticket(uow_factory)).number
    async with uow_factory() as first, uow_factory() as second:
        a = await first.tickets.get(number)
        b = await second.tickets.get(number)
        apply(a, "D001")
        await first.tickets.save(a)
        await first.commit()
        apply(b, "D002")
        with pytest.raises(ConcurrentUpdate):
            await second.tickets.save(b)
            await second.commit()
    async with uow_factory() as uow:
        stored = await uow.tickets.get(number)
    assert stored == a  # the first change, whole; nothing of the second


async def test_commit_collects_the_events_of_handed_out_tickets_once(uow_factory) -> None:
    number = (await add_ticket(uow_factory)).number
    async with uow_factory() as uow:
        t = await uow.tickets.get(number)
        t.assign("D001", T0)
        t.accept("D001", T0)
        await uow.tickets.save(t)
        assert uow.collect_new_events() == [TicketAssigned(number, "D001", T0), TicketAccepted(number, "D001", T0)]
        assert uow.collect_new_events() == []
        await uow.commit()
    async with uow_factory() as uow:
        t = await uow.tickets.get(number)
        assert t.events == []  # events are not stored
        t.resolve("D001", "好了", T0)
        await uow.rollback()
        assert uow.collect_new_events() == []  # undone changes announce nothing


async def test_changes_visible_after_commit(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.stations.upsert(station())
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.stations.get("S01") == station()


async def test_leaving_without_commit_rolls_back(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.stations.upsert(station())
        assert await uow.stations.get("S01") == station()  # visible inside its own transaction
    async with uow_factory() as uow:
        assert await uow.stations.get("S01") is None
        assert await uow.stations.list() == []


async def test_exception_rolls_back(uow_factory) -> None:
    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            await uow.citizens.save(Citizen("o1"))
            raise RuntimeError("handler failed")
    async with uow_factory() as uow:
        assert await uow.citizens.get("o1") is None


async def test_explicit_rollback_discards_and_uow_stays_usable(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.citizens.save(Citizen("o1"))
        await uow.rollback()
        assert await uow.citizens.get("o1") is None
        await uow.citizens.save(Citizen("o2"))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.citizens.get("o1") is None
        assert await uow.citizens.get("o2") is not None


async def test_work_after_commit_needs_another_commit(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.citizens.save(Citizen("o1"))
        await uow.commit()
        await uow.citizens.save(Citizen("o2"))
    async with uow_factory() as uow:
        assert await uow.citizens.get("o1") is not None
        assert await uow.citizens.get("o2") is None


async def test_uncommitted_changes_invisible_to_concurrent_uow(uow_factory, backend) -> None:
    if backend[0] == "sqlite":
        pytest.skip("SQLite: a writing unit of work holds the database lock until it ends")
    async with uow_factory() as writer:
        await writer.citizens.save(Citizen("o1"))
        async with uow_factory() as reader:
            assert await reader.citizens.get("o1") is None
        await writer.commit()
    async with uow_factory() as reader:
        assert await reader.citizens.get("o1") is not None


# --- stations -----------------------------------------------------------------------------------
async def test_station_upsert_reports_changes(uow_factory) -> None:
    async with uow_factory() as uow:
        assert await uow.stations.upsert(station()) is True
        assert await uow.stations.upsert(station()) is False
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.stations.upsert(station()) is False
        changed = station(places=("江兴社区", "梅里村", "城南社区"))
        assert await uow.stations.upsert(changed) is True
        await uow.commit()
    async with uow_factory() as uow:
        got = await uow.stations.get("S01")
        assert got == changed
        assert isinstance(got.kind, StationKind) and isinstance(got.places, tuple)
        assert await uow.stations.get("nope") is None


async def test_station_list_sorted_by_code(uow_factory) -> None:
    async with uow_factory() as uow:
        for code in ("S03", "S01", "S02"):
            await uow.stations.upsert(station(code, kind=StationKind.STATION, specialties=()))
        await uow.commit()
    async with uow_factory() as uow:
        assert [s.code for s in await uow.stations.list()] == ["S01", "S02", "S03"]
        assert (await uow.stations.get("S02")).specialties == ()


# --- deputies ----------------------------------------------------------------------------------
async def test_deputy_upsert_get_list(uow_factory) -> None:
    async with uow_factory() as uow:
        assert await uow.deputies.upsert(deputy("D002", "S02")) is True
        assert await uow.deputies.upsert(deputy("D001")) is True
        assert await uow.deputies.upsert(deputy("D003")) is True
        assert await uow.deputies.upsert(deputy("D001")) is False
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.deputies.get("D001") == deputy("D001")
        assert [d.code for d in await uow.deputies.list()] == ["D001", "D002", "D003"]
        assert [d.code for d in await uow.deputies.list("S01")] == ["D001", "D003"]
        assert await uow.deputies.upsert(deputy("D001", phone="051263000000")) is True
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.deputies.get("D001")).phone == "051263000000"


async def test_deputy_bind_and_upsert_keeps_openid(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.deputies.upsert(deputy("D001"))
        await uow.commit()
    async with uow_factory() as uow:
        await uow.deputies.bind("D001", "wx-deputy-1")
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.deputies.by_openid("wx-deputy-1")).code == "D001"
        assert await uow.deputies.by_openid("someone-else") is None
        # re-importing the roster neither unbinds nor counts as a change
        assert await uow.deputies.upsert(deputy("D001")) is False
        assert await uow.deputies.upsert(deputy("D001", name="张三丰")) is True
        await uow.commit()
    async with uow_factory() as uow:
        got = await uow.deputies.get("D001")
        assert (got.name, got.openid) == ("张三丰", "wx-deputy-1")


async def test_rebinding_an_account_moves_it(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.deputies.upsert(deputy("D001"))
        await uow.deputies.upsert(deputy("D002"))
        await uow.commit()
    async with uow_factory() as uow:
        await uow.deputies.bind("D001", "wx-1")
        await uow.commit()
    async with uow_factory() as uow:
        await uow.deputies.bind("D002", "wx-1")
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.deputies.by_openid("wx-1")).code == "D002"
        assert (await uow.deputies.get("D001")).openid is None


async def test_unbind_forgets_the_account_and_says_which(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.deputies.upsert(deputy("D001"))
        await uow.deputies.bind("D001", "wx-1")
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.deputies.unbind("D001") == "wx-1"
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.deputies.by_openid("wx-1") is None
        assert (await uow.deputies.get("D001")).openid is None
        assert await uow.deputies.unbind("D001") is None  # nothing bound: nothing to forget
        with pytest.raises(LookupError):
            await uow.deputies.unbind("D404")


async def test_get_for_update_makes_a_concurrent_edit_wait_for_the_first(uow_factory, backend) -> None:
    """The console's compare-and-write: the second reader of the row sees the first one's change."""
    async with uow_factory() as uow:
        await uow.stations.upsert(station("S01"))
        await uow.commit()
    if backend[0] != "postgres":  # memory: one process; SQLite: one writer at a time anyway
        async with uow_factory() as uow:
            assert (await uow.stations.get("S01", for_update=True)).code == "S01"
        return
    first_read = asyncio.Event()

    async def edit(name: str, wait: asyncio.Event | None) -> str:
        async with uow_factory() as uow:
            seen = await uow.stations.get("S01", for_update=True)
            if wait is None:
                first_read.set()
                await asyncio.sleep(0.3)  # the second edit reads meanwhile: it must wait
            await uow.stations.upsert(Station(**{**seen.__dict__, "name": name}))
            await uow.commit()
            return seen.name

    first = asyncio.create_task(edit("甲改的", None))
    await first_read.wait()
    second_saw = await edit("乙改的", first_read)
    assert (await first, second_saw) == (station("S01").name, "甲改的")


async def test_bind_unknown_deputy_raises(uow_factory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(LookupError):
            await uow.deputies.bind("D404", "wx-1")


# --- duty roster --------------------------------------------------------------------------------
async def test_duty_stores_dates_and_weekdays(uow_factory) -> None:
    weekly = DutyShift("S01", "D001", 3, time(9), time(12))
    dated = DutyShift("S01", "D001", date(2026, 12, 1), time(9), time(12))
    late = DutyShift("S02", "D002", 7, time(18), time.max)
    async with uow_factory() as uow:
        assert await uow.duty.upsert(weekly) is True
        assert await uow.duty.upsert(dated) is True  # same deputy and start, different day form
        assert await uow.duty.upsert(late) is True
        assert await uow.duty.upsert(weekly) is False
        await uow.commit()
    async with uow_factory() as uow:
        shifts = await uow.duty.list()
        assert len(shifts) == 3
        assert set(shifts) == {weekly, dated, late}
        by_day = {s.day: s for s in shifts}
        assert type(by_day[3].day) is int
        assert type(by_day[date(2026, 12, 1)].day) is date
        assert by_day[7].end == time.max
        assert by_day[7].covers(datetime(2026, 12, 6, 23, 59, 59))
        assert await uow.duty.list("S02") == [late]


async def test_duty_upsert_updates_end(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.duty.upsert(DutyShift("S01", "D001", 1, time(9), time(12)))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.duty.upsert(DutyShift("S01", "D001", 1, time(9), time(17))) is True
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.duty.list() == [DutyShift("S01", "D001", 1, time(9), time(17))]


# --- tickets -------------------------------------------------------------------------------------
async def test_ticket_numbers_start_at_1001_and_increase(uow_factory) -> None:
    first = await add_ticket(uow_factory)
    second = await add_ticket(uow_factory)
    assert first.number == 1001
    assert second.number > first.number


async def test_add_sets_number_and_round_trips(uow_factory) -> None:
    original = ticket()
    async with uow_factory() as uow:
        added = await uow.tickets.add(original)
        assert original.number == added.number  # the caller's object learns its number too
        await uow.commit()
    async with uow_factory() as uow:
        got = await uow.tickets.get(added.number)
    assert got == added
    assert got.status is TicketStatus.FILED
    assert got.attachments[1] == Attachment("voice", "m2", text="路灯坏了")
    async with uow_factory() as uow:
        assert await uow.tickets.get(999_999) is None


async def test_rolled_back_ticket_is_gone_and_numbers_still_increase(uow_factory) -> None:
    kept = await add_ticket(uow_factory)
    async with uow_factory() as uow:
        await uow.tickets.add(ticket(openid="dropped"))
    later = await add_ticket(uow_factory)
    async with uow_factory() as uow:
        assert await uow.tickets.list_for_citizen("dropped") == []
    # a sequence may or may not hand the dropped number out again; order is what matters
    assert later.number > kept.number


async def test_concurrent_adds_get_unique_numbers(uow_factory) -> None:
    async def one(i: int) -> int:
        async with uow_factory() as uow:
            t = await uow.tickets.add(ticket(openid=f"o{i}"))
            await uow.commit()
            return t.number

    numbers = await asyncio.gather(*(one(i) for i in range(12)))
    assert len(set(numbers)) == 12
    assert min(numbers) == 1001
    async with uow_factory() as uow:
        for i, n in enumerate(numbers):
            assert (await uow.tickets.get(n)).citizen_openid == f"o{i}"


async def test_returned_tickets_are_copies(uow_factory) -> None:
    t = await add_ticket(uow_factory)
    async with uow_factory() as uow:
        got = await uow.tickets.get(t.number)
        got.assign("D001", T0)
        got.attachments.append(Attachment("image", "m3"))
        assert (await uow.tickets.get(t.number)).status is TicketStatus.FILED
        await uow.commit()
    async with uow_factory() as uow:
        fresh = await uow.tickets.get(t.number)
    assert fresh.status is TicketStatus.FILED and fresh.deputy_code is None
    assert len(fresh.timeline) == 1 and len(fresh.attachments) == 2


async def test_save_persists_the_whole_lifecycle(uow_factory) -> None:
    t = await add_ticket(uow_factory)
    steps = [
        lambda x: x.assign("D001", T0 + timedelta(minutes=1)),
        lambda x: x.accept("D001", T0 + timedelta(minutes=2)),
        lambda x: x.reply("D001", "已联系供电所", T0 + timedelta(minutes=3)),
        lambda x: x.attachments.append(Attachment("image", "m9", "http://x/9.jpg")),
        lambda x: x.resolve("D001", "路灯已修复", T0 + timedelta(days=1)),
        lambda x: x.rate(5, "很及时", T0 + timedelta(days=2)),
    ]
    expected = t.copy()
    for step in steps:
        async with uow_factory() as uow:
            current = await uow.tickets.get(t.number)
            step(current)
            await uow.tickets.save(current)
            await uow.commit()
        step(expected)
        async with uow_factory() as uow:
            assert await uow.tickets.get(t.number) == expected
    assert expected.status is TicketStatus.RESOLVED and expected.rating == 5
    assert [e.kind for e in expected.timeline] == ["filed", "assigned", "accepted", "replied", "resolved", "rated"]


async def test_save_transfer_moves_station(uow_factory) -> None:
    t = await add_ticket(uow_factory)
    async with uow_factory() as uow:
        current = await uow.tickets.get(t.number)
        current.assign("D001", T0)
        current.transfer("D001", deputy("D009", "S09"), T0)
        await uow.tickets.save(current)
        await uow.commit()
    async with uow_factory() as uow:
        got = await uow.tickets.get(t.number)
    assert (got.deputy_code, got.station_code, got.status) == ("D009", "S09", TicketStatus.ASSIGNED)
    assert got.timeline[-1] == TimelineEntry(T0, "transferred", "D001", "D009")


async def test_save_without_commit_is_lost(uow_factory) -> None:
    t = await add_ticket(uow_factory)
    async with uow_factory() as uow:
        current = await uow.tickets.get(t.number)
        current.assign("D001", T0)
        await uow.tickets.save(current)
    async with uow_factory() as uow:
        got = await uow.tickets.get(t.number)
    assert got.status is TicketStatus.FILED and len(got.timeline) == 1


async def test_save_unknown_ticket_raises(uow_factory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(LookupError):
            await uow.tickets.save(ticket(number=424242))


async def test_ticket_queries(uow_factory) -> None:
    a = await add_ticket(uow_factory, openid="c1", at=T0)
    b = await add_ticket(uow_factory, openid="c1", at=T0 + timedelta(hours=1))
    c = await add_ticket(uow_factory, openid="c2", at=T0 - timedelta(hours=1), station_code="S02")
    d = await add_ticket(uow_factory, openid="c2", at=T0 + timedelta(hours=2))
    e = await add_ticket(uow_factory, openid="c1", at=T0 + timedelta(hours=3))
    async with uow_factory() as uow:
        for number, code in ((a.number, "D001"), (b.number, "D001"), (d.number, "D002")):
            x = await uow.tickets.get(number)
            x.assign(code, T0)
            await uow.tickets.save(x)
        x = await uow.tickets.get(b.number)
        x.resolve("D001", "done", T0)
        await uow.tickets.save(x)
        await uow.commit()

    async with uow_factory() as uow:
        assert [t.number for t in await uow.tickets.list_for_citizen("c1")] == [e.number, b.number, a.number]
        assert await uow.tickets.list_for_citizen("nobody") == []
        assert [t.number for t in await uow.tickets.list_open_for_deputy("D001")] == [a.number]
        assert [t.number for t in await uow.tickets.list_open_for_deputy("D002")] == [d.number]
        assert await uow.tickets.open_counts(["D001", "D002", "D003"]) == {"D001": 1, "D002": 1, "D003": 0}
        assert await uow.tickets.open_counts([]) == {}
        # waiting: filed and unassigned, oldest first
        assert [t.number for t in await uow.tickets.waiting()] == [c.number, e.number]
        assert [t.number for t in await uow.tickets.waiting("S01")] == [e.number]
        assert [t.number for t in await uow.tickets.waiting("S02")] == [c.number]


async def test_briefs_for_citizen_are_their_own_and_followed_tickets_newest_first(uow_factory) -> None:
    a = await add_ticket(uow_factory, openid="c1")
    b = await add_ticket(uow_factory, openid="c2")  # a merged live question c1 asked too
    c = await add_ticket(uow_factory, openid="c1", summary="桥头护栏断了")
    await add_ticket(uow_factory, openid="c3")
    async with uow_factory() as uow:
        await uow.live.add_followers(b.number, ["c1"])
        await uow.live.add_followers(a.number, ["c1"])  # following one's own: listed once
        x = await uow.tickets.get(a.number)
        x.assign("D001", T0)
        await uow.tickets.save(x)
        await uow.commit()
    async with uow_factory() as uow:
        assert list(await uow.tickets.briefs_for_citizen("c1")) == [
            TicketBrief(c.number, "桥头护栏断了", TicketStatus.FILED),
            TicketBrief(b.number, "村口路灯坏了一个星期", TicketStatus.FILED),
            TicketBrief(a.number, "村口路灯坏了一个星期", TicketStatus.ASSIGNED),
        ]
        assert [t.number for t in await uow.tickets.briefs_for_citizen("c2")] == [b.number]
        assert await uow.tickets.briefs_for_citizen("nobody") == []


async def test_awaiting_rating_is_newest_unrated_resolved(uow_factory) -> None:
    numbers = [(await add_ticket(uow_factory, openid="c1")).number for _ in range(3)]
    other = (await add_ticket(uow_factory, openid="c2")).number
    async with uow_factory() as uow:
        assert await uow.tickets.awaiting_rating("c1") is None
        for n in numbers[:2] + [other]:
            x = await uow.tickets.get(n)
            x.assign("D001", T0)
            x.resolve("D001", "done", T0)
            await uow.tickets.save(x)
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.tickets.awaiting_rating("c1")).number == numbers[1]
        x = await uow.tickets.get(numbers[1])
        x.rate(4, "", T0)
        await uow.tickets.save(x)
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.tickets.awaiting_rating("c1")).number == numbers[0]


# --- citizens ------------------------------------------------------------------------------------
async def test_citizen_save_and_update(uow_factory) -> None:
    async with uow_factory() as uow:
        assert await uow.citizens.get("o1") is None
        await uow.citizens.save(Citizen("o1", station_code="S01"))
        await uow.commit()
    async with uow_factory() as uow:
        c = await uow.citizens.get("o1")
        assert c == Citizen("o1", station_code="S01")
        c.station_code = "S02"
        c.subscribed = False
        assert (await uow.citizens.get("o1")).subscribed  # a copy until saved
        await uow.citizens.save(c)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.citizens.get("o1") == Citizen("o1", "S02", False)


async def test_citizen_scene_note_keeps_the_rest_of_the_row(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.citizens.note_scene("o1", "", None)  # left a scene it never noted: no row
        await uow.citizens.save(Citizen("o2", station_code="S01", subscribed=False))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.citizens.get("o1") is None
        await uow.citizens.note_scene("o1", "report", T0)
        assert (await uow.citizens.get("o2")).scene == ""
        await uow.citizens.note_scene("o2", "report", T0)
        assert (await uow.citizens.get("o2")).scene == "report"  # seen by the same unit of work
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.citizens.get("o1") == Citizen("o1", scene="report", scene_started_at=T0)
        assert await uow.citizens.get("o2") == Citizen("o2", "S01", False, "report", T0)
        await uow.citizens.note_scene("o2", "", None)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.citizens.get("o2") == Citizen("o2", "S01", False)


# --- outbox --------------------------------------------------------------------------------------
async def test_outbox_add_due_save(uow_factory) -> None:
    async with uow_factory() as uow:
        first = await uow.outbox.add(
            OutboxMessage("o1", "您的诉求 #1001 已受理", "status", {"number": "#1001"}, created_at=T0)
        )
        later = await uow.outbox.add(OutboxMessage("o2", "稍后", next_attempt_at=T0 + timedelta(minutes=5)))
        held = await uow.outbox.add(OutboxMessage("o1", "留言", status="held", created_at=T0))
        await uow.commit()
    assert first.id is not None and later.id is not None and first.id != later.id
    assert later.created_at is not None  # stamped when the caller did not
    async with uow_factory() as uow:
        assert [m.id for m in await uow.outbox.due(T0)] == [first.id]
        assert [m.id for m in await uow.outbox.due(T0 + timedelta(minutes=5))] == [first.id, later.id]
        assert [m.id for m in await uow.outbox.due(T0 + timedelta(minutes=5), limit=1)] == [first.id]
        assert [m.id for m in await uow.outbox.held_for("o1")] == [held.id]
        assert await uow.outbox.held_for("o2") == []
        got = (await uow.outbox.due(T0))[0]
        assert got == first
        got.status, got.channel, got.attempts, got.sent_at = "sent", "customer_service", 1, T0
        await uow.outbox.save(got)
        failing = (await uow.outbox.due(T0 + timedelta(minutes=5)))[0]
        failing.status, failing.attempts, failing.last_error = "failed", 5, "45015 response out of time limit"
        await uow.outbox.save(failing)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.outbox.due(T0 + timedelta(days=1)) == []
        assert [m.id for m in await uow.outbox.list()] == [later.id, held.id]
        assert [m.id for m in await uow.outbox.list(["sent"])] == [first.id]
        sent = (await uow.outbox.list(["sent"]))[0]
        assert (sent.channel, sent.sent_at, sent.template_data) == ("customer_service", T0, {"number": "#1001"})
        assert (await uow.outbox.list(["failed"]))[0].last_error.startswith("45015")


async def test_outbox_claim_is_extended_only_while_still_held(uow_factory) -> None:
    claimed, taken_over = T0 + timedelta(seconds=10), T0 + timedelta(seconds=12)
    async with uow_factory() as uow:
        a = await uow.outbox.add(OutboxMessage("o1", "甲", next_attempt_at=claimed, ticket_number=1001))
        b = await uow.outbox.add(OutboxMessage("o2", "乙", next_attempt_at=taken_over))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.outbox.extend_claim([a.id, b.id], claimed, T0 + timedelta(seconds=20)) == [a.id]
        await uow.commit()
    async with uow_factory() as uow:
        by_id = {m.id: m for m in await uow.outbox.list(["pending"])}
    assert by_id[a.id].next_attempt_at == T0 + timedelta(seconds=20) and by_id[a.id].ticket_number == 1001
    assert by_id[b.id].next_attempt_at == taken_over


async def test_push_failures_per_station_and_told_once(uow_factory) -> None:
    async with uow_factory() as uow:
        for n, code in ((1, "S01"), (2, "S02"), (3, "S01")):
            await uow.outbox.record_failure(PushFailure(n, code, 1000 + n, f"o{n}", "40003", T0 + timedelta(minutes=n)))
        await uow.commit()
    async with uow_factory() as uow:
        assert [f.message_id for f in await uow.outbox.failures("S01")] == [3, 1]
        await uow.outbox.mark_told([3], T0 + timedelta(hours=1))
        await uow.commit()
    async with uow_factory() as uow:
        assert [f.message_id for f in await uow.outbox.failures("S01", untold=True)] == [1]
        assert [f.message_id for f in await uow.outbox.failures()] == [3, 2, 1]
        assert (await uow.outbox.failures("S01"))[0].told_at == T0 + timedelta(hours=1)


async def test_late_inbound_is_kept_once_taken_when_due_and_forgotten(uow_factory) -> None:
    first = Inbound("oLate1", InboundKind.TEXT, created_at=1, msg_id="71", text="路灯坏了「」🙂",
                    subscriptions=(("tmpl-1", "accept"),))
    second = Inbound("oLate2", InboundKind.EVENT, created_at=2, event="scan", scene="live:3", latitude=31.1)
    async with uow_factory() as uow:
        await uow.late_inbound.keep(LateInbound(first, T0, T0 + timedelta(seconds=30)))
        await uow.late_inbound.keep(LateInbound(second, T0 + timedelta(seconds=1), T0 + timedelta(seconds=31)))
        await uow.commit()
    async with uow_factory() as uow:  # kept again (a second keep of the same message): unchanged
        await uow.late_inbound.keep(LateInbound(first, T0, T0 + timedelta(hours=1), attempts=3))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.late_inbound.due(T0 + timedelta(seconds=29), 10) == []
        due = await uow.late_inbound.due(T0 + timedelta(minutes=1), 10)
        assert [(e.inbound, e.attempts) for e in due] == [(first, 0), (second, 0)]  # as they came, whole
        assert len(await uow.late_inbound.due(T0 + timedelta(minutes=1), 1)) == 1
        due[0].attempts, due[0].next_try_at = 1, T0 + timedelta(minutes=5)
        await uow.late_inbound.save(due[0])
        await uow.late_inbound.forget(second.dedupe_key)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.late_inbound.due(T0 + timedelta(minutes=2), 10) == []
        [again] = await uow.late_inbound.due(T0 + timedelta(minutes=5), 10)
        assert (again.key, again.attempts) == (first.dedupe_key, 1)
        await uow.late_inbound.forget(first.dedupe_key)
        await uow.rollback()
    async with uow_factory() as uow:  # a rolled-back forget forgets nothing
        assert len(await uow.late_inbound.due(T0 + timedelta(minutes=5), 10)) == 1


async def test_processed_inbound_is_stored_with_its_effect_or_not_at_all(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.processed_inbound.add(ProcessedInbound("msg:1", T0, ticket_number=1001))
        await uow.outbox.add(OutboxMessage("o1", "已受理"))
        await uow.rollback()
    async with uow_factory() as uow:
        assert await uow.processed_inbound.get("msg:1") is None
        await uow.processed_inbound.add(ProcessedInbound("msg:1", T0, ticket_number=1001))
        await uow.commit()
    async with uow_factory() as uow:
        await uow.processed_inbound.set_reply("msg:1", "已收到 #1001")
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.processed_inbound.get("msg:1") == ProcessedInbound("msg:1", T0, 1001, "已收到 #1001")
    with pytest.raises(Exception):  # the key is a primary key: a second handling cannot commit
        async with uow_factory() as uow:
            await uow.processed_inbound.add(ProcessedInbound("msg:1", T0))
            await uow.commit()
    async with uow_factory() as uow:
        await uow.processed_inbound.add(ProcessedInbound("msg:2", T0 + timedelta(days=2)))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.processed_inbound.prune(T0 + timedelta(days=1)) == 1
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.processed_inbound.get("msg:1") is None
        assert await uow.processed_inbound.get("msg:2") is not None


async def test_outbox_save_unknown_raises(uow_factory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(LookupError):
            await uow.outbox.save(OutboxMessage("o1", "x", id=987654))


# --- bind codes ----------------------------------------------------------------------------------
async def test_bind_code_single_use_and_expiry(uow_factory) -> None:
    async with uow_factory() as uow:
        assert await uow.bind_codes.create("D001", "123456", T0 + timedelta(hours=24), T0)
        assert await uow.bind_codes.create("D002", "654321", T0 + timedelta(hours=24), T0)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.bind_codes.consume("000000", T0) is None
        assert await uow.bind_codes.consume("654321", T0 + timedelta(hours=24)) is None  # expired
        assert await uow.bind_codes.consume("123456", T0) == "D001"
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.bind_codes.consume("123456", T0) is None  # used
    async with uow_factory() as uow:
        # a used code's digits may be handed out again
        assert await uow.bind_codes.create("D003", "123456", T0 + timedelta(hours=48), T0 + timedelta(hours=1))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.bind_codes.consume("123456", T0 + timedelta(hours=30)) == "D003"


async def test_bind_code_create_never_replaces_a_valid_code(uow_factory) -> None:
    async with uow_factory() as uow:
        assert await uow.bind_codes.create("D001", "222222", T0 + timedelta(hours=24), T0)
        await uow.commit()
    # another deputy drawing the same digits while D001's code is valid: refused, D001's code stays
    async with uow_factory() as uow:
        assert await uow.bind_codes.create("D002", "222222", T0 + timedelta(hours=25), T0 + timedelta(hours=1)) is False
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.bind_codes.consume("222222", T0 + timedelta(hours=2)) == "D001"
        await uow.rollback()
    # the same deputy cannot refresh it either while it is valid
    async with uow_factory() as uow:
        assert await uow.bind_codes.create("D001", "222222", T0 + timedelta(hours=30), T0) is False
    # once expired, the digits are free again
    async with uow_factory() as uow:
        assert await uow.bind_codes.create("D002", "222222", T0 + timedelta(hours=48), T0 + timedelta(hours=24))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.bind_codes.consume("222222", T0 + timedelta(hours=25)) == "D002"
        await uow.commit()


async def test_bind_code_consumed_in_rolled_back_uow_stays_valid(uow_factory) -> None:
    async with uow_factory() as uow:
        assert await uow.bind_codes.create("D001", "111111", T0 + timedelta(hours=1), T0)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.bind_codes.consume("111111", T0) == "D001"
    async with uow_factory() as uow:
        assert await uow.bind_codes.consume("111111", T0) == "D001"


async def test_ticket_added_then_rolled_back_cannot_be_saved(uow_factory) -> None:
    async with uow_factory() as uow:
        t = await uow.tickets.add(ticket())
        await uow.rollback()
        t.assign("D001", T0)
        with pytest.raises(LookupError):
            await uow.tickets.save(t)


# --- what the handlers make of a concurrent ticket change ------------------------------------------
@pytest.mark.parametrize("meanwhile", ["citizen_note", "deputy_reply"])
async def test_a_deputy_command_is_redone_after_a_real_concurrent_change(
    sql_uow_factory, sql_backend, monkeypatch, meanwhile: str
) -> None:
    """On PostgreSQL a ticket changed by someone else between read and save fails (the version
    check, or the timeline's unique positions when only an event was added); the deputy's command
    is then done once more on the fresh ticket."""
    if sql_backend[0] != "postgres":
        pytest.skip("SQLite serialises units of work; the conflict cannot arise")
    from bot.bootstrap import build_services
    from bot.settings import Settings
    from bot.texts import default_texts
    from handlers.deputies import handle_deputy_message
    from storage.kv import MemoryKeyValueStore
    from storage.sql import SqlTicketRepository

    class Clock:
        def now(self) -> datetime:
            return T0

    services = build_services(Settings(_env_file=None), uow=sql_uow_factory, kv=MemoryKeyValueStore(),  # type: ignore[call-arg]
                              nlu=None, clock=Clock(), texts=default_texts())  # type: ignore[arg-type]
    wang = deputy(openid="wx-wang")
    async with sql_uow_factory() as uow:
        await uow.stations.upsert(station())
        await uow.deputies.upsert(wang)
        await uow.deputies.bind("D001", "wx-wang")
        filed = await uow.tickets.add(ticket())
        filed.assign("D001", T0)
        await uow.tickets.save(filed)
        await uow.commit()

    save = SqlTicketRepository.save
    interfered: list[int] = []

    async def save_after_a_citizen_note(self, changed: Ticket) -> None:  # type: ignore[no-untyped-def]
        if not interfered:  # the citizen adds a note at the same moment, in another transaction
            interfered.append(changed.number)
            async with sql_uow_factory() as other:
                fresh = await other.tickets.get(changed.number)
                if meanwhile == "citizen_note":
                    fresh.add_citizen_note("还有一根也坏了", T0)
                else:  # the same deputy answered from another phone: that accepted it already
                    fresh.reply("D001", "马上到", T0)
                await other.tickets.save(fresh)
                await other.commit()
        await save(self, changed)

    monkeypatch.setattr(SqlTicketRepository, "save", save_after_a_citizen_note)
    reply = await handle_deputy_message(services, wang, f"受理 #{filed.number}")
    assert interfered == [filed.number]
    async with sql_uow_factory() as uow:
        stored = await uow.tickets.get(filed.number)
        outbox = await uow.outbox.list()
    if meanwhile == "citizen_note":
        texts = services.texts  # the citizen's window is shut and no template is set: the news waits
        assert reply == texts.get("deputy_accepted_ok", number=filed.number,
                                  reach=texts.get("reach_later", who=texts.get("reach_who_citizen")))
        assert stored.status is TicketStatus.ACCEPTED
        assert [e.kind for e in stored.timeline] == ["filed", "assigned", "citizen_note", "accepted"]
        assert len([m for m in outbox if m.recipient_openid == "citizen-1"]) == 1  # one accepted notice
    else:
        assert reply == services.texts.get("ticket_already_accepted", number=filed.number)
        assert stored.status is TicketStatus.REPLIED
        assert [e.kind for e in stored.timeline] == ["filed", "assigned", "accepted", "replied"]
        assert outbox == []


async def test_outbox_keeps_a_push_purpose_and_its_drop(uow_factory) -> None:
    async with uow_factory() as uow:
        held = await uow.outbox.add(OutboxMessage("o1", "【新工单 #1001】", status="held", ticket_number=1001,
                                                  purpose="assignment", created_at=T0))
        await uow.commit()
    async with uow_factory() as uow:
        (got,) = await uow.outbox.held_for("o1")
        assert (got.purpose, got.ticket_number) == ("assignment", 1001)
        got.status, got.last_error = "dropped", "stale: transferred"
        await uow.outbox.save(got)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.outbox.list() == []  # not waiting any more
        (dropped,) = await uow.outbox.list(["dropped"])
        assert (dropped.id, dropped.last_error, dropped.purpose) == (held.id, "stale: transferred", "assignment")


async def test_a_push_filed_unreachable_then_failed_is_one_failure(uow_factory) -> None:
    """A held message filed as unreachable may later fail for good: its record is replaced."""
    async with uow_factory() as uow:
        await uow.outbox.record_failure(PushFailure(7, "S1", 1001, "o7", "unreachable: 43004", T0))
        await uow.commit()
    async with uow_factory() as uow:
        await uow.outbox.record_failure(PushFailure(7, "S1", 1001, "o7", "45009", T0 + timedelta(hours=1)))
        await uow.commit()
    async with uow_factory() as uow:
        assert [(f.message_id, f.error) for f in await uow.outbox.failures("S1")] == [(7, "45009")]
