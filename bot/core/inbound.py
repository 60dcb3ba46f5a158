"""What arrives from WeChat, reduced to what the application needs (the WeChat edge builds it)."""
from __future__ import annotations

import hashlib
import json
from contextvars import ContextVar
from dataclasses import asdict, astuple, dataclass
from datetime import datetime
from enum import StrEnum

from bot.core import keys


# True while a message is handled that its channel knows was never handled before: its first
# claim, in a store whose claims began longer ago than any retry comes (bot/webhook.py). The
# Dispatcher then skips the database lookup of the message's exactly-once record. Default: look.
FIRST_DELIVERY: ContextVar[bool] = ContextVar("zhitongche_first_delivery", default=False)


class InboundKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"
    VIDEO = "video"
    SHORTVIDEO = "shortvideo"
    LOCATION = "location"
    LINK = "link"
    EVENT = "event"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Inbound:
    openid: str  # FromUserName
    kind: InboundKind
    created_at: int = 0  # CreateTime, unix seconds
    msg_id: str = ""  # MsgId; empty for events
    text: str = ""  # text Content; voice Recognition; link title
    event: str = ""  # lower-case Event: subscribe | unsubscribe | scan | click | view | location | ...
    scene: str = ""  # QR scene without the qrscene_ prefix, e.g. station:S01 or deputy:D001
    event_key: str = ""  # raw EventKey (menu key, URL)
    media_id: str = ""
    pic_url: str = ""
    latitude: float | None = None
    longitude: float | None = None
    label: str = ""  # location label
    raw_type: str = ""  # the original MsgType (and Event) for unknown types
    # 订阅通知 choices of subscribe_msg_popup_event / subscribe_msg_change_event: (template id, accept|reject)
    subscriptions: tuple[tuple[str, str], ...] = ()

    @property
    def dedupe_key(self) -> str:
        """WeChat retries carry the same MsgId. Events have none: sender + CreateTime + event (and
        a digest of its key); other messages without one add a digest of everything they say, so
        two different texts sent in the same second are two messages."""
        if self.msg_id:
            return keys.inbound_dedupe(self.msg_id, self.openid, self.created_at, "", "")
        if self.kind == InboundKind.EVENT:
            return keys.inbound_dedupe("", self.openid, self.created_at, self.event, _digest(self.event_key))
        return keys.inbound_dedupe("", self.openid, self.created_at, "", _digest(repr(astuple(self))))


@dataclass
class ProcessedInbound:
    """The durable record that a message had its effect: written in the same transaction as the
    effect (a ticket, a relay, a rating…), so a retry after a crash or a Redis loss is answered
    from here instead of being handled twice."""

    key: str  # Inbound.dedupe_key
    handled_at: datetime
    ticket_number: int | None = None  # the ticket the effect was about, if any
    reply: str | None = None  # the passive reply, once known (written just after the effect)


@dataclass
class LateInbound:
    """A message WeChat was answered `success` for before its handler finished: WeChat will not
    send it again, so it is kept until its reply is pushed, and handled again if its handler
    failed or its process died (handlers/late_inbound.py)."""

    inbound: Inbound
    kept_at: datetime
    next_try_at: datetime  # handled again from then on, unless its reply was pushed
    attempts: int = 0  # handlings started by the replay job

    @property
    def key(self) -> str:
        return self.inbound.dedupe_key


def inbound_to_json(inbound: Inbound) -> str:
    return json.dumps(asdict(inbound), ensure_ascii=False)


def inbound_from_json(text: str) -> Inbound:
    fields = json.loads(text)
    fields["kind"] = InboundKind(fields["kind"])
    fields["subscriptions"] = tuple(tuple(pair) for pair in fields.get("subscriptions", ()))
    return Inbound(**fields)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
