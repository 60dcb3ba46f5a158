"""Two towns, three stations, deputies, shifts, and tickets in every state, for the console tests."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from bot.core.people import Deputy, DutyShift, Station, StationKind
from bot.core.tickets import Attachment, Ticket, TimelineEntry
from bot.core.ports import UnitOfWorkFactory

NOW = datetime(2026, 12, 1, 10, 0)  # a Tuesday
STATIONS = [
    Station("SZ-01", "盛泽镇东方社区联络站", StationKind.STATION, "盛泽镇", "东方路1号"),
    Station("SZ-02", "盛泽镇南麻联络站", StationKind.STATION, "盛泽镇"),
    Station("QD-01", "七都镇开弦弓联络站", StationKind.STATION, "七都镇"),
]
DEPUTIES = [
    Deputy("D101", "沈建国", "区", "SZ-01", "13800000101", openid="oid-d101"),
    Deputy("D102", "王秀英", "镇", "SZ-02", "13800000102"),
    Deputy("D201", "陈志明", "区", "QD-01", "13800000201", openid="oid-d201"),
]
SHIFTS = [
    DutyShift("SZ-01", "D101", 2, time(9), time(12)),  # Tuesdays: on duty at NOW
    DutyShift("SZ-02", "D102", 3, time(14), time(17)),
    DutyShift("QD-01", "D201", NOW.date(), time(8), time(11)),
]
CITIZEN = "oid-citizen-aaaaaaaa"


def _ticket(station: str, summary: str, created: datetime, **kw: object) -> Ticket:
    return Ticket(0, kw.pop("openid", CITIZEN), str(kw.pop("category", "城乡建设")), summary,  # type: ignore[arg-type]
                  str(kw.pop("place", "东方路")), str(kw.pop("details", "")), station, created, **kw)  # type: ignore[arg-type]


async def seed(uow_factory: UnitOfWorkFactory, resolved_rated: int = 6) -> dict[str, int]:
    """Returns ticket numbers by name."""
    numbers: dict[str, int] = {}
    async with uow_factory() as uow:
        for s in STATIONS:
            await uow.stations.upsert(s)
        for d in DEPUTIES:
            await uow.deputies.upsert(d)
            if d.openid:
                await uow.deputies.bind(d.code, d.openid)
        for shift in SHIFTS:
            await uow.duty.upsert(shift)

        waiting = _ticket("SZ-01", "路灯坏了三盏", NOW - timedelta(hours=3), phone="13900000001",
                          share_contact=True, details="东方路北段晚上一片漆黑",
                          attachments=[Attachment("image", url="http://127.0.0.1:9/photo.jpg"),
                                       Attachment("voice", media_id="m1", text="路灯不亮已经一个星期了")])
        waiting.timeline.append(TimelineEntry(waiting.created_at, "filed", "citizen"))
        numbers["waiting"] = (await uow.tickets.add(waiting)).number

        late = _ticket("SZ-01", "垃圾桶满了没人清", NOW - timedelta(days=2), category="环境保护",
                       phone="13900000002", share_contact=False)
        late.assign("D101", NOW - timedelta(days=2))
        numbers["late"] = (await uow.tickets.add(late)).number

        fresh = _ticket("SZ-02", "小区门口积水", NOW - timedelta(hours=2), category="城乡建设")
        fresh.assign("D102", NOW - timedelta(hours=2))
        numbers["assigned"] = (await uow.tickets.add(fresh)).number

        other_town = _ticket("QD-01", "七都镇的桥栏杆断了", NOW - timedelta(days=1), category="交通运输")
        other_town.assign("D201", NOW - timedelta(days=1))
        other_town.accept("D201", NOW - timedelta(hours=20))
        numbers["other_town"] = (await uow.tickets.add(other_town)).number

        for i in range(resolved_rated):
            created = NOW - timedelta(days=20 + i)
            t = _ticket("SZ-01", f"已办结的诉求{i}", created, category="民政" if i % 2 else "城乡建设")
            t.assign("D101", created + timedelta(hours=1))
            t.accept("D101", created + timedelta(hours=2 if i < 5 else 30))
            t.resolve("D101", "已处理", created + timedelta(days=3 if i < 4 else 20))
            t.rate(5 if i < 4 else 2, "", created + timedelta(days=21))
            numbers[f"resolved{i}"] = (await uow.tickets.add(t)).number
        await uow.commit()
    return numbers
