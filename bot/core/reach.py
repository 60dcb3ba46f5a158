"""Which way a push can reach its recipient, decided before anything is sent, so that delivery
and the reply a user gets agree (handlers/channels.py gathers the facts, handlers/delivery.py
sends by the answer, the use cases word their replies by it).

Also: whether a held push still applies when it is released (`stale_reason`)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.tickets import Ticket, TicketStatus


class Route(StrEnum):
    CUSTOM = "custom"  # customer-service text inside the user's window
    TEMPLATE = "template"  # template message (configured template id)
    SUBSCRIBE = "subscribe"  # 订阅通知 (configured id and a subscription left)
    HELD = "held"  # kept until the user next writes to the account
    UNREACHABLE = "unreachable"  # no WeChat bound, or not following the account


class Outcome(StrEnum):
    """What a reply may say about a push."""

    SENT = "sent"
    LATER = "later"  # 会在对方下次打开公众号时送达
    UNREACHABLE = "unreachable"  # 无法送达，工作人员会跟进


@dataclass(frozen=True)
class Recipient:
    openid: str  # "" = the person has bound no WeChat account
    following: bool = True
    window_open: bool = False  # a customer-service window with quota left
    subscriptions: int = 0  # 订阅通知 grants left for the message's subscribe template


@dataclass(frozen=True)
class Channels:
    """The out-of-window channels configured for one message ("" = none)."""

    template_id: str = ""
    subscribe_id: str = ""


def route(recipient: Recipient, channels: Channels) -> Route:
    if not recipient.openid or not recipient.following:
        return Route.UNREACHABLE
    if recipient.window_open:
        return Route.CUSTOM
    if channels.template_id:
        return Route.TEMPLATE
    if channels.subscribe_id and recipient.subscriptions > 0:
        return Route.SUBSCRIBE
    return Route.HELD


def outcome(chosen: Route) -> Outcome:
    if chosen is Route.UNREACHABLE:
        return Outcome.UNREACHABLE
    if chosen is Route.HELD:
        return Outcome.LATER
    return Outcome.SENT


# --- stale pushes ---------------------------------------------------------------------------------
class Purpose(StrEnum):
    """What a push is for: decides whether it still applies when it finally goes out."""

    NONE = ""
    ASSIGNMENT = "assignment"  # to the deputy: a new ticket, 回复「受理」接手
    TRANSFER_IN = "transfer_in"  # to the deputy a ticket was handed to
    QUEUE = "queue"  # to a station's deputy: a ticket waits for the next shift
    NOTE = "note"  # a citizen's words to the ticket's deputy
    STATUS = "status"  # to the citizen: news of their ticket (always still true as history)
    DIGEST = "digest"  # may be joined with the recipient's next held digests when released (云直播 answers)


def stale_reason(purpose: str, ticket: Ticket | None, recipient_deputy: str | None) -> str | None:
    """Why the push no longer applies ("closed", "transferred", "assigned", "accepted"), or None. `recipient_deputy`
    is the code of the deputy the push goes to (None when it goes to a citizen)."""
    if ticket is None or purpose in (Purpose.NONE, Purpose.STATUS):
        return None
    if not ticket.status.is_open:
        return "closed"
    if purpose == Purpose.QUEUE:
        return "assigned" if ticket.deputy_code else None
    if ticket.deputy_code != recipient_deputy:
        return "transferred"
    if purpose in (Purpose.ASSIGNMENT, Purpose.TRANSFER_IN) and ticket.status is not TicketStatus.ASSIGNED:
        return "accepted"  # already accepted or answered: 「回复受理接手」 would be wrong
    return None
