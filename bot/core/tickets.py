"""The ticket aggregate: a citizen's report from filing to rating, with its timeline.

Each state change appends a timeline entry (stored, shown to the citizen) and records a domain
event (bot/core/events.py; dispatched when the unit of work commits)."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.core.errors import DomainError
from bot.core.events import (
    CitizenNoted,
    Event,
    StationMessaged,
    TicketAccepted,
    TicketAssigned,
    TicketClosedAsDuplicate,
    TicketFiled,
    TicketRated,
    TicketReplied,
    TicketResolved,
    TicketTransferred,
)
from bot.core.people import Deputy

FIRST_TICKET_NUMBER = 1001

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

CITIZEN = "citizen"  # the actor of the citizen's own timeline entries
SYSTEM = "system"
# the openid of a walk-in or phone visitor's ticket, filed by staff: nobody to push to on WeChat
VISITOR = ""


class TicketStatus(StrEnum):
    FILED = "filed"  # stored, waiting in a station queue for a deputy
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    REPLIED = "replied"
    RESOLVED = "resolved"
    CLOSED = "closed"  # closed by staff without a result of its own (a duplicate): never rated

    @property
    def is_open(self) -> bool:
        return self not in CLOSED_STATUSES


class TimelineKind(StrEnum):
    FILED = "filed"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    REPLIED = "replied"
    RESOLVED = "resolved"
    TRANSFERRED = "transferred"
    RATED = "rated"
    CITIZEN_NOTE = "citizen_note"
    STATION_MESSAGE = "station_message"  # staff's words to the citizen, from the station
    DUPLICATE = "duplicate"  # closed as a duplicate; text = the original's number


CLOSED_STATUSES = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


class AttachmentKind(StrEnum):
    IMAGE = "image"
    VOICE = "voice"
    VIDEO = "video"
    LOCATION = "location"


@dataclass(frozen=True)
class Attachment:
    kind: AttachmentKind
    media_id: str = ""
    url: str = ""
    text: str = ""  # voice recognition, or a location label


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: TimelineKind
    actor: str = ""  # deputy code, CITIZEN or SYSTEM
    text: str = ""


@dataclass(frozen=True)
class TicketBrief:
    """A line of a citizen's list: what 我的诉求 shows, read without the timeline."""

    number: int
    summary: str
    status: TicketStatus


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
    timeline: list[TimelineEntry] = field(default_factory=list)
    rating: int | None = None
    rating_comment: str = ""
    reception_id: int | None = None  # filed by staff at this reception day
    # recorded domain events, not stored: the unit of work collects them on commit
    events: list[Event] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def file(cls, *, citizen_openid: str, category: str, summary: str, place: str, details: str,
             station_code: str, at: datetime, phone: str | None = None, share_contact: bool = False,
             attachments: list[Attachment] | None = None, filed_by: str = CITIZEN,
             reception_id: int | None = None, deputy_code: str | None = None) -> Ticket:
        """A new report for `station_code` going to the on-duty `deputy_code` (None: it waits in the
        station queue), not numbered yet: the repository numbers it on add (one INSERT stores it
        assigned), then `announce` records that it was filed. `filed_by` is a staff username for
        a visitor's report."""
        ticket = cls(
            number=0, citizen_openid=citizen_openid, category=category, summary=summary, place=place,
            details=details, station_code=station_code, created_at=at, phone=phone,
            share_contact=share_contact, attachments=list(attachments or ()), reception_id=reception_id,
            timeline=[TimelineEntry(at, TimelineKind.FILED, filed_by, station_code)],
        )
        if deputy_code is not None:
            ticket._set_deputy(deputy_code, at)
        return ticket

    @property
    def from_visitor(self) -> bool:
        """Filed by staff for a visitor without WeChat: the citizen cannot be pushed to."""
        return self.citizen_openid == VISITOR

    @property
    def revision(self) -> int:
        """Grows with every change (each appends a timeline entry): a form posts the revision it
        showed, and an action on a ticket changed since is refused (no lost update)."""
        return len(self.timeline)

    # --- state machine -------------------------------------------------
    def _require_open(self) -> None:
        if not self.status.is_open:
            raise DomainError("ticket_closed", number=self.number)

    def _require_deputy(self, deputy_code: str) -> None:
        if self.deputy_code != deputy_code:
            raise DomainError("ticket_not_yours", number=self.number)
        self._require_open()

    def _set_deputy(self, deputy_code: str, at: datetime) -> None:
        self.deputy_code = deputy_code
        self.status = TicketStatus.ASSIGNED
        self.timeline.append(TimelineEntry(at, TimelineKind.ASSIGNED, deputy_code))

    def announce(self) -> None:
        """The new ticket, numbered: it was filed (and given to its deputy, if it has one)."""
        self.events.append(TicketFiled(self.number, self.station_code, self.deputy_code, self.created_at))

    def assign(self, deputy_code: str, at: datetime, *, station_code: str | None = None) -> None:
        """To this deputy (a queue drain, or staff); staff may move it to the deputy's station.
        A deputy it is taken from is named in the event, so they are told."""
        self._require_open()
        previous = self.deputy_code
        if previous == deputy_code:
            raise DomainError("assign_same_deputy", number=self.number)
        if station_code:
            self.station_code = station_code
        self._set_deputy(deputy_code, at)
        self.events.append(TicketAssigned(self.number, deputy_code, at, previous_deputy=previous))

    def accept(self, deputy_code: str, at: datetime) -> None:
        self._require_deputy(deputy_code)
        if self.status is not TicketStatus.ASSIGNED:
            raise DomainError("ticket_already_accepted", number=self.number)
        self.status = TicketStatus.ACCEPTED
        self.timeline.append(TimelineEntry(at, TimelineKind.ACCEPTED, deputy_code))
        self.events.append(TicketAccepted(self.number, deputy_code, at))

    def reply(self, deputy_code: str, text: str, at: datetime) -> bool:
        """The deputy's words to the citizen. Replying to a ticket not yet accepted accepts it
        first (an `accepted` entry before `replied`): answering the citizen is taking the ticket
        on, and a later 受理 is then rightly "already accepted". Returns True when it did accept;
        the citizen is not sent a separate accepted notice for that, the reply says enough."""
        self._require_deputy(deputy_code)
        accepted = self.status is TicketStatus.ASSIGNED
        if accepted:
            self.timeline.append(TimelineEntry(at, TimelineKind.ACCEPTED, deputy_code))
            self.events.append(TicketAccepted(self.number, deputy_code, at, by_reply=True))
        self.status = TicketStatus.REPLIED
        self.timeline.append(TimelineEntry(at, TimelineKind.REPLIED, deputy_code, text))
        self.events.append(TicketReplied(self.number, deputy_code, text, at))
        return accepted

    def resolve(self, deputy_code: str, result: str, at: datetime) -> None:
        self._require_deputy(deputy_code)
        self.status = TicketStatus.RESOLVED
        self.timeline.append(TimelineEntry(at, TimelineKind.RESOLVED, deputy_code, result))
        self.events.append(TicketResolved(self.number, deputy_code, result, at))

    def transfer(self, from_deputy: str, to_deputy: Deputy, at: datetime) -> None:
        self._require_deputy(from_deputy)
        if to_deputy.code == from_deputy:
            raise DomainError("transfer_to_self", number=self.number)
        self.deputy_code = to_deputy.code
        self.station_code = to_deputy.station_code
        self.status = TicketStatus.ASSIGNED
        self.timeline.append(TimelineEntry(at, TimelineKind.TRANSFERRED, from_deputy, to_deputy.code))
        self.events.append(TicketTransferred(self.number, from_deputy, to_deputy.code, at))

    def rate(self, score: int, comment: str, at: datetime) -> None:
        if self.status is not TicketStatus.RESOLVED:
            raise DomainError("rate_not_resolved", number=self.number)
        if not 1 <= score <= 5:
            raise DomainError("rate_out_of_range")
        self.rating = score
        self.rating_comment = comment
        self.timeline.append(TimelineEntry(at, TimelineKind.RATED, CITIZEN, f"{score} {comment}".strip()))
        self.events.append(TicketRated(self.number, score, comment, at))

    def add_citizen_note(self, text: str, at: datetime) -> None:
        """The citizen's own words added to the open ticket."""
        if not self.status.is_open:
            raise DomainError("citizen_note_closed", number=self.number)
        self.timeline.append(TimelineEntry(at, TimelineKind.CITIZEN_NOTE, CITIZEN, text))
        self.events.append(CitizenNoted(self.number, text, at))

    def message_citizen(self, author: str, text: str, at: datetime) -> None:
        """The station's words to the citizen (staff write them in the console), on the timeline."""
        if self.from_visitor:
            raise DomainError("station_message_no_wechat", number=self.number)
        self.timeline.append(TimelineEntry(at, TimelineKind.STATION_MESSAGE, author, text))
        self.events.append(StationMessaged(self.number, author, text, at))

    def close_as_duplicate(self, original: int, author: str, at: datetime) -> None:
        """The same matter as ticket `original`: closed here, handled there."""
        self._require_open()
        if original == self.number:
            raise DomainError("duplicate_of_itself", number=self.number)
        self.status = TicketStatus.CLOSED
        self.timeline.append(TimelineEntry(at, TimelineKind.DUPLICATE, author, str(original)))
        self.events.append(TicketClosedAsDuplicate(self.number, original, self.deputy_code, at))

    def copy(self) -> Ticket:
        """A copy with its own lists and no recorded events."""
        return dataclasses.replace(self, attachments=list(self.attachments), timeline=list(self.timeline), events=[])


def take_events(tickets: Iterable[Ticket]) -> list[Event]:
    """The events these tickets recorded, in order, each handed over once (the units of work's
    collect_new_events)."""
    events: list[Event] = []
    for ticket in tickets:
        events += ticket.events
        ticket.events.clear()
    return events
