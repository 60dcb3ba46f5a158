"""Messages to WeChat users, kept in the outbox until delivered."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.core.events import Event, PushFailed


class OutboxStatus(StrEnum):
    PENDING = "pending"
    HELD = "held"  # outside every window and no template: waits until the user writes
    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"  # no longer applied when its turn came (ticket transferred away, closed): last_error says why


UNDELIVERED = (OutboxStatus.PENDING, OutboxStatus.HELD, OutboxStatus.FAILED)


class Channel(StrEnum):
    CUSTOMER_SERVICE = "customer_service"
    TEMPLATE = "template"
    SUBSCRIBE = "subscribe"  # 订阅通知 (message/subscribe/bizsend)


@dataclass
class OutboxMessage:
    """One message to a WeChat user, recorded in the same transaction as the change that caused it."""

    recipient_openid: str
    text: str
    template_key: str = ""  # which ZTC_TEMPLATE_ID_* to use outside the window; "" = none
    template_data: dict[str, str] = field(default_factory=dict)
    id: int | None = None
    status: OutboxStatus = OutboxStatus.PENDING
    channel: str = ""  # a Channel, once sent
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str = ""
    created_at: datetime | None = None
    sent_at: datetime | None = None
    ticket_number: int | None = None  # the ticket it is about (set by the bus for event pushes)
    purpose: str = ""  # a bot.core.reach.Purpose: whether it still applies when it goes out
    events: list[Event] = field(default_factory=list, compare=False, repr=False)

    def give_up(self, error: str, at: datetime) -> None:
        """No more attempts: `failed`, and PushFailed so that a person hears of it."""
        self.status = OutboxStatus.FAILED
        self.next_attempt_at = None
        self.last_error = error[:500]
        assert self.id is not None, "a stored message"
        self.events.append(PushFailed(self.id, self.recipient_openid, self.ticket_number, self.last_error, at))


@dataclass(frozen=True)
class PushFailure:
    """A push that failed for good, as its station's staff and deputies see it."""

    message_id: int
    station_code: str  # "" when the push was about no ticket
    ticket_number: int | None
    recipient_openid: str
    error: str
    failed_at: datetime
    told_at: datetime | None = None  # when an on-duty deputy was shown it in 我的工单
