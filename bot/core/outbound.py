"""Messages to WeChat users, kept in the outbox until delivered."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class OutboxStatus(StrEnum):
    PENDING = "pending"
    HELD = "held"  # outside every window and no template: waits until the user writes
    SENT = "sent"
    FAILED = "failed"


UNDELIVERED = (OutboxStatus.PENDING, OutboxStatus.HELD, OutboxStatus.FAILED)


class Channel(StrEnum):
    CUSTOMER_SERVICE = "customer_service"
    TEMPLATE = "template"


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
