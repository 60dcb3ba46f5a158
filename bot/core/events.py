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
    """A waiting ticket got a deputy (the station queue drained)."""

    number: int
    deputy_code: str
    at: datetime


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
class PushFailed(Event):
    """An outbox message failed for good (raised by OutboxMessage.give_up): a person must know."""

    message_id: int
    recipient_openid: str
    ticket_number: int | None  # the ticket the push was about, if any
    error: str
    at: datetime


@dataclass(frozen=True)
class PushUndeliverable(Event):
    """No way reaches the recipient of an outbox message (a deputy who bound no WeChat, a user who
    no longer follows the account): staff must follow up (raised by OutboxMessage.unreachable)."""

    message_id: int
    recipient_openid: str
    ticket_number: int | None
    error: str  # "unreachable: <why>"
    at: datetime


@dataclass(frozen=True)
class MessagesQueued(Event):
    """Outbox messages were stored by a committed unit of work (raised by the unit of work, not an
    aggregate): delivery can start at once."""

    count: int
