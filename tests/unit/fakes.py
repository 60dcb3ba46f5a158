"""Fakes for the ticket use cases: a clock that moves only when told, a gateway that records what
it was asked to send (and fails on cue), and a Services with Wujiang-like seed data."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

import pytest

from bot.bootstrap import build_services
from bot.core.outbound import OutboxMessage
from bot.core.parse import ParseResult
from bot.core.people import Deputy, DutyShift, Station, StationKind
from bot.core.ports import ConcurrentUpdate, WeChatAPIError
from bot.core.tickets import Ticket
from bot.core.wechat_fields import problems
from bot.settings import Settings
from bot.texts import default_texts
from handlers.services import ReportDraft, Services
from storage.kv import MemoryKeyValueStore
from storage.memory import MemoryUnitOfWorkFactory

# Monday 2026-12-07, 10:00
MONDAY_10 = datetime(2026, 12, 7, 10, 0)


class FixedClock:
    def __init__(self, now: datetime = MONDAY_10) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)


class NullNLU:
    async def parse(self, text: str) -> ParseResult:
        return ParseResult.fallback(text)

    async def learn_places(self, stations: Sequence[Station]) -> None:
        return None


@dataclass
class Sent:
    channel: str  # customer_service | template
    openid: str
    text: str = ""
    template_id: str = ""
    data: dict[str, str] = field(default_factory=dict)


class RecordingGateway:
    """Records every successful send; `fail(...)` queues errors raised by the next calls."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.calls: list[str] = []
        self._failures: dict[str, list[Exception]] = {"text": [], "template": [], "subscribe": []}

    def fail(self, kind: str, *errors: Exception) -> None:
        self._failures[kind].extend(errors)

    def _maybe_fail(self, kind: str) -> None:
        self.calls.append(kind)
        if self._failures[kind]:
            raise self._failures[kind].pop(0)

    async def send_text(self, openid: str, text: str) -> None:
        self._maybe_fail("text")
        self.sent.append(Sent("customer_service", openid, text=text))

    async def send_template(self, openid: str, template_id: str, data: dict[str, str], url: str = "") -> None:
        self._maybe_fail("template")
        self.sent.append(Sent("template", openid, template_id=template_id, data=dict(data)))

    async def send_subscribe(self, openid: str, template_id: str, data: dict[str, str], page: str = "") -> None:
        self._maybe_fail("subscribe")
        if not template_id:
            raise api_error(40037)
        if problems(data, template=False):  # as WeChat: typed fields within their limits
            raise api_error(47003)
        self.sent.append(Sent("subscribe", openid, template_id=template_id, data=dict(data)))

    async def create_qrcode(self, scene: str) -> bytes:
        return b"\x89PNG fake " + scene.encode()

    def to(self, openid: str) -> list[Sent]:
        return [s for s in self.sent if s.openid == openid]


def api_error(errcode: int) -> WeChatAPIError:
    return WeChatAPIError(errcode, f"errcode {errcode}")


# --- seed data -------------------------------------------------------------------------------------
STATIONS = (
    Station("LL-HOME", "黎里镇代表之家", StationKind.HOME, "黎里镇", places=("黎里",)),
    Station("LL-DC", "东村代表联络站", StationKind.STATION, "黎里镇", places=("东村", "西村")),
    Station("SZ-HOME", "盛泽镇代表之家", StationKind.HOME, "盛泽镇"),
    Station("SZ-LAW", "盛泽法律调解联络站", StationKind.STATION, "盛泽镇", specialties=("政法",)),
    Station("KFQ-HOME", "开发区代表之家", StationKind.HOME, "开发区"),
)

# citizens and deputies' WeChat accounts
CITIZEN = "oCitizen000000000001"
CITIZEN_2 = "oCitizen000000000002"
WANG_OPENID = "oDeputyWang000000001"
LI_OPENID = "oDeputyLi00000000002"
ZHOU_OPENID = "oDeputyZhou000000003"

DEPUTIES = (
    Deputy("D001", "王晓梅", "区", "LL-DC", phone="13900000001", openid=WANG_OPENID),
    Deputy("D002", "李建国", "镇", "LL-DC", phone="13900000002", openid=LI_OPENID),
    Deputy("D003", "周玉兰", "区", "LL-HOME", phone="13900000003", openid=ZHOU_OPENID),
    Deputy("D004", "陈卫东", "镇", "SZ-HOME", phone="13900000004"),  # never bound WeChat
)


def weekday_shift(station: str, deputy: str, weekday: int, start: str, end: str) -> DutyShift:
    return DutyShift(station, deputy, weekday, time.fromisoformat(start), time.fromisoformat(end))


# Monday: D001 and D002 at 东村 09–12, D003 at 黎里 home 14–17; 盛泽 home: D004 Tuesdays only.
SHIFTS = (
    weekday_shift("LL-DC", "D001", 1, "09:00", "12:00"),
    weekday_shift("LL-DC", "D002", 1, "09:00", "12:00"),
    weekday_shift("LL-HOME", "D003", 1, "14:00", "17:00"),
    weekday_shift("SZ-HOME", "D004", 2, "09:00", "12:00"),
)


class KickCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def make_services(
    clock: FixedClock | None = None,
    *,
    templates: bool = False,
) -> Services:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        template_id_assignment="TPL-ASSIGN" if templates else "",
        template_id_status="TPL-STATUS" if templates else "",
    )
    clock = clock or FixedClock()
    return build_services(settings, uow=MemoryUnitOfWorkFactory(clock), kv=MemoryKeyValueStore(),
                          nlu=NullNLU(), clock=clock, texts=default_texts(), kick_delivery=KickCounter())


async def seed(services: Services, *, stations: Sequence[Station] = STATIONS,
               deputies: Sequence[Deputy] = DEPUTIES, shifts: Sequence[DutyShift] = SHIFTS) -> None:
    async with services.uow() as uow:
        for station in stations:
            await uow.stations.upsert(station)
        for deputy in deputies:
            await uow.deputies.upsert(deputy)  # upsert keeps the stored openid: bind explicitly
            if deputy.openid:
                await uow.deputies.bind(deputy.code, deputy.openid)
        for shift in shifts:
            await uow.duty.upsert(shift)
        await uow.commit()


def draft(**overrides: Any) -> ReportDraft:
    values: dict[str, Any] = dict(
        citizen_openid=CITIZEN,
        category="城乡建设",
        summary="村口的路灯坏了一个星期",
        place="黎里镇东村",
        details="晚上路过很黑",
    )
    values.update(overrides)
    return ReportDraft(**values)


async def outbox(services: Services, statuses: Sequence[str] = ("pending", "held", "failed", "sent")) -> list[OutboxMessage]:
    async with services.uow() as uow:
        return list(await uow.outbox.list(statuses))


async def get_ticket(services: Services, number: int) -> Ticket:
    async with services.uow() as uow:
        ticket = await uow.tickets.get(number)
    assert ticket is not None
    return ticket


def stale_saves(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """Make the next `times` ticket saves fail as the repositories do on a version mismatch."""
    from storage.memory import MemoryTicketRepository

    left = list(range(times))
    save = MemoryTicketRepository.save

    async def flaky_save(self, ticket):  # type: ignore[no-untyped-def]
        if left:
            left.pop()
            raise ConcurrentUpdate(f"ticket #{ticket.number} changed meanwhile")
        await save(self, ticket)

    monkeypatch.setattr(MemoryTicketRepository, "save", flaky_save)
    return left
