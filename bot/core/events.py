"""Domain events: what happened, recorded by the aggregates, dispatched by the message bus after
the unit of work collected them on commit (handlers/bus.py). Plain data: ticket numbers and
deputy codes, so a handler loads what it needs in the same transaction."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class Event:
    """Base of all domain events."""


@dataclass(frozen=True)
class TicketFiled(Event):
    """A new ticket got its number; `deputy_code` is who took it at once (None: it waits in the
    station queue until someone is on duty)."""

    number: int
    station_code: str
    deputy_code: str | None
    at: datetime


@dataclass(frozen=True)
class TicketAssigned(Event):
    """A ticket got a deputy: the station queue drained, or staff assigned or reassigned it
    (`previous_deputy`: whom it was taken from)."""

    number: int
    deputy_code: str
    at: datetime
    previous_deputy: str | None = None


@dataclass(frozen=True)
class TicketAccepted(Event):
    number: int
    deputy_code: str
    at: datetime
    by_reply: bool = False  # the deputy replied before 受理: the reply itself tells the citizen


@dataclass(frozen=True)
class TicketReplied(Event):
    number: int
    deputy_code: str
    text: str
    at: datetime


@dataclass(frozen=True)
class TicketResolved(Event):
    number: int
    deputy_code: str
    result: str
    at: datetime


@dataclass(frozen=True)
class TicketTransferred(Event):
    number: int
    from_deputy: str
    to_deputy: str
    at: datetime


@dataclass(frozen=True)
class TicketRated(Event):
    number: int
    score: int
    comment: str
    at: datetime


@dataclass(frozen=True)
class CitizenNoted(Event):
    """The citizen added words to their open ticket (`#1024 <text>`)."""

    number: int
    text: str
    at: datetime


@dataclass(frozen=True)
class StationMessaged(Event):
    """Staff wrote to the citizen from the station (`author`: the staff username)."""

    number: int
    author: str
    text: str
    at: datetime


@dataclass(frozen=True)
class TicketClosedAsDuplicate(Event):
    """Closed as the same matter as ticket `original`; `deputy_code` had it, if anyone."""

    number: int
    original: int
    deputy_code: str | None
    at: datetime


@dataclass(frozen=True)
class PushFailed(Event):
    """An outbox message failed for good (raised by OutboxMessage.give_up): a person must know."""

    message_id: int
    recipient_openid: str
    ticket_number: int | None  # the ticket the push was about, if any
    error: str
    at: datetime


@dataclass(frozen=True)
class MessagesQueued(Event):
    """Outbox messages were stored by a committed unit of work (raised by the unit of work, not an
    aggregate): delivery can start at once."""

    count: int


# --- live-stream receptions (bot/core/live.py) ----------------------------------------------------
@dataclass(frozen=True)
class LiveQuestionAsked(Event):
    session_id: int
    question_id: int
    asker_openid: str
    at: datetime


@dataclass(frozen=True)
class LiveQuestionChanged(Event):
    """A question of a live session is new or changed: `view` is what the host's queue shows."""

    session_id: int
    question_id: int
    view: dict[str, object]
    at: datetime


@dataclass(frozen=True)
class LiveQuestionAnswered(Event):
    session_id: int
    question_id: int
    askers: tuple[str, ...]  # everyone who asked it, merged questions' askers included
    text: str
    at: datetime


@dataclass(frozen=True)
class LiveQuestionHidden(Event):
    session_id: int
    question_id: int
    askers: tuple[str, ...]
    reason: str
    at: datetime


@dataclass(frozen=True)
class LiveFollowUpFiled(Event):
    """The session's leftover questions are tickets: each asker with the numbers of theirs."""

    session_id: int
    title: str
    numbers: tuple[tuple[str, tuple[int, ...]], ...]  # (openid, ticket numbers)
    at: datetime


@dataclass(frozen=True)
class LiveSessionEnded(Event):
    session_id: int
    station_code: str
    at: datetime
