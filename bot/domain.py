"""Domain model of zhitongche: stations, deputies, duty shifts, tickets. No I/O here."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum


class DomainError(Exception):
    """A rule of the domain was broken. `key` names a user-facing text in config/texts.yaml."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key, params)
        self.key = key
        self.params = params


class StationKind(StrEnum):
    HOME = "家"  # 代表之家, one per town/street
    STATION = "站"  # 代表联络站, per village/community, some specialised
    POINT = "点"  # 代表联系点


DEPUTY_LEVELS = ("全国", "省", "市", "区", "镇")

CATEGORIES = (
    "城乡建设",
    "环境保护",
    "交通运输",
    "教育文体",
    "劳动和社会保障",
    "商贸旅游",
    "卫生计生",
    "农村农业",
    "政法",
    "民政",
    "其他",
)

DISTRICT_QUEUE = "district"  # station code of the district-wide queue


@dataclass(frozen=True)
class Station:
    code: str
    name: str
    kind: StationKind
    town: str
    address: str = ""
    specialties: tuple[str, ...] = ()  # categories served
    places: tuple[str, ...] = ()  # villages / communities served


@dataclass(frozen=True)
class Deputy:
    code: str
    name: str
    level: str
    station_code: str
    phone: str = ""
    openid: str | None = None  # set once the deputy binds their WeChat account


@dataclass(frozen=True)
class DutyShift:
    station_code: str
    deputy_code: str
    day: date | int  # a date, or an ISO weekday 1 (Mon) .. 7 (Sun)
    start: time
    end: time

    def covers(self, at: datetime) -> bool:
        if isinstance(self.day, date):
            if at.date() != self.day:
                return False
        elif at.isoweekday() != self.day:
            return False
        return self.start <= at.time() < self.end


class TicketStatus(StrEnum):
    FILED = "filed"  # stored, waiting in a station queue for a deputy
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    REPLIED = "replied"
    RESOLVED = "resolved"

    @property
    def is_open(self) -> bool:
        return self is not TicketStatus.RESOLVED


@dataclass(frozen=True)
class Attachment:
    kind: str  # image | voice | video | location
    media_id: str = ""
    url: str = ""
    text: str = ""  # voice recognition, or a location label


@dataclass(frozen=True)
class TicketEvent:
    at: datetime
    kind: str  # filed | assigned | accepted | replied | resolved | transferred | rated | citizen_note
    actor: str = ""  # deputy code, "citizen" or "system"
    text: str = ""


@dataclass
class Ticket:
    number: int
    citizen_openid: str
    category: str
    summary: str
    place: str
    details: str
    station_code: str
    created_at: datetime
    status: TicketStatus = TicketStatus.FILED
    deputy_code: str | None = None
    phone: str | None = None
    share_contact: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    events: list[TicketEvent] = field(default_factory=list)
    rating: int | None = None
    rating_comment: str = ""

    # --- state machine -------------------------------------------------
    def _require_deputy(self, deputy_code: str) -> None:
        if self.deputy_code != deputy_code:
            raise DomainError("ticket_not_yours", number=self.number)
        if not self.status.is_open:
            raise DomainError("ticket_closed", number=self.number)

    def assign(self, deputy_code: str, at: datetime) -> None:
        if not self.status.is_open:
            raise DomainError("ticket_closed", number=self.number)
        self.deputy_code = deputy_code
        self.status = TicketStatus.ASSIGNED
        self.events.append(TicketEvent(at, "assigned", deputy_code))

    def accept(self, deputy_code: str, at: datetime) -> None:
        self._require_deputy(deputy_code)
        if self.status is not TicketStatus.ASSIGNED:
            raise DomainError("ticket_already_accepted", number=self.number)
        self.status = TicketStatus.ACCEPTED
        self.events.append(TicketEvent(at, "accepted", deputy_code))

    def reply(self, deputy_code: str, text: str, at: datetime) -> bool:
        """The deputy's words to the citizen. Replying to a ticket not yet accepted accepts it
        first (an `accepted` event before `replied`): answering the citizen is taking the ticket
        on, and a later 受理 is then rightly "already accepted". Returns True when it did accept;
        the citizen is not sent a separate accepted notice for that, the reply says enough."""
        self._require_deputy(deputy_code)
        accepted = self.status is TicketStatus.ASSIGNED
        if accepted:
            self.events.append(TicketEvent(at, "accepted", deputy_code))
        self.status = TicketStatus.REPLIED
        self.events.append(TicketEvent(at, "replied", deputy_code, text))
        return accepted

    def resolve(self, deputy_code: str, result: str, at: datetime) -> None:
        self._require_deputy(deputy_code)
        self.status = TicketStatus.RESOLVED
        self.events.append(TicketEvent(at, "resolved", deputy_code, result))

    def transfer(self, from_deputy: str, to_deputy: Deputy, at: datetime) -> None:
        self._require_deputy(from_deputy)
        if to_deputy.code == from_deputy:
            raise DomainError("transfer_to_self", number=self.number)
        self.deputy_code = to_deputy.code
        self.station_code = to_deputy.station_code
        self.status = TicketStatus.ASSIGNED
        self.events.append(TicketEvent(at, "transferred", from_deputy, to_deputy.code))

    def rate(self, score: int, comment: str, at: datetime) -> None:
        if self.status is not TicketStatus.RESOLVED:
            raise DomainError("rate_not_resolved", number=self.number)
        if not 1 <= score <= 5:
            raise DomainError("rate_out_of_range")
        self.rating = score
        self.rating_comment = comment
        self.events.append(TicketEvent(at, "rated", "citizen", f"{score} {comment}".strip()))

    def copy(self) -> Ticket:
        return dataclasses.replace(self, attachments=list(self.attachments), events=list(self.events))


@dataclass
class Citizen:
    """What the bot keeps of one follower: the station bound by QR code, whether they follow us.
    (WeChat's messaging window is short-lived state: handlers/delivery.py keeps it in the key-value store.)"""

    openid: str
    station_code: str | None = None
    subscribed: bool = True


@dataclass
class OutboxMessage:
    """One message to a WeChat user, recorded in the same transaction as the change that caused it."""

    recipient_openid: str
    text: str
    template_key: str = ""  # which ZTC_TEMPLATE_ID_* to use outside the window; "" = none
    template_data: dict[str, str] = field(default_factory=dict)
    id: int | None = None
    status: str = "pending"  # pending | held | sent | failed
    channel: str = ""  # customer_service | template, once sent
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    created_at: datetime | None = None
    sent_at: datetime | None = None


def mask_openid(openid: str | None) -> str:
    """Openids never go to logs in full."""
    if not openid:
        return "-"
    return openid[:4] + "…" + openid[-2:] if len(openid) > 8 else "…"
