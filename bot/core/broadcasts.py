"""Broadcasts to a station's or town's followers, within WeChat's rules for a 服务号. Pure.

- each user receives at most MONTHLY_MASS_LIMIT mass messages a calendar month;
- a mass send by tag (`message/mass/sendall`, filter.tag_id) reaches a whole tag; by openid list
  (`message/mass/send`) 2 to 10,000 openids; each carries a `clientmsgid`, so a retried call
  cannot send twice;
- a follower inside their 48 h window gets a customer-service message instead (no mass budget
  used), through the ordinary outbox;
- a follower who accepted the reception-notice 订阅通知 (settings.subscribe_id_reception) and has
  a send of it left gets a reception's announcement as a 订阅通知 (message/subscribe/bizsend,
  one call per person, typed fields), no mass budget used; a one-time grant is used up by it.

The plan and each send are rows (the outbox pattern): a sender claims a send, calls WeChat
with its clientmsgid, marks it sent; a claim whose sender died expires and is taken again, and
WeChat refuses the repeated clientmsgid, so nobody gets it twice. A 订阅通知 takes no such key:
one whose sender died mid-call (its claim expired, LEASE_EXPIRED) is not sent again blindly but
marked failed as unconfirmed, for staff to retry or not — never twice without being asked."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

MONTHLY_MASS_LIMIT = 4
MASS_BATCH = 10_000  # message/mass/send: at most 10,000 openids a call …
MASS_MIN = 2  # … and at least 2


class Channel(StrEnum):
    MASS_TAG = "mass_tag"
    MASS_OPENIDS = "mass_openids"
    CUSTOMER_SERVICE = "customer_service"
    SUBSCRIBE = "subscribe"  # 订阅通知, one row per person


MASS_CHANNELS = (Channel.MASS_TAG, Channel.MASS_OPENIDS)  # the ones that use the monthly budget
# last_error of a send whose claim ran out before its sender said how it went (set by the claim)
LEASE_EXPIRED = "lease expired"
# last_error of a 订阅通知 whose sender died during the call: WeChat may have delivered it
UNCONFIRMED = "unconfirmed: the sender stopped during the call"


class Unreachable(StrEnum):
    UNFOLLOWED = "unfollowed"  # no longer follows the account
    BUDGET = "budget"  # already had MONTHLY_MASS_LIMIT mass messages this month
    TOO_FEW = "too_few"  # a lone mass recipient: message/mass/send needs 2 openids


class SendStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Recipient:
    openid: str
    following_account: bool = True
    in_window: bool = False  # a customer-service message can reach them now
    mass_used: int = 0  # mass messages received this calendar month
    subscribed: bool = False  # a reception-notice 订阅通知 send left


@dataclass(frozen=True)
class PlannedSend:
    channel: Channel
    openids: tuple[str, ...]  # for a tag send: who the tag reaches (for the budget)
    tag_id: int | None = None


@dataclass(frozen=True)
class BroadcastPlan:
    sends: tuple[PlannedSend, ...]
    customer_service: tuple[str, ...]
    unreachable: dict[Unreachable, int]
    remaining_budget: int  # mass messages left this month for every mass recipient of this audience
    subscribe: tuple[str, ...] = ()  # 订阅通知, one send each

    def count(self, channel: Channel) -> int:
        if channel == Channel.CUSTOMER_SERVICE:
            return len(self.customer_service)
        if channel == Channel.SUBSCRIBE:
            return len(self.subscribe)
        return sum(len(s.openids) for s in self.sends if s.channel == channel)

    @property
    def reached(self) -> int:
        return sum(self.count(c) for c in Channel)

    @property
    def openids(self) -> list[str]:
        """Everyone it goes to, whichever way."""
        return [*self.customer_service, *self.subscribe, *(o for s in self.sends for o in s.openids)]

    def summary(self) -> dict[str, int]:
        """How many people by which channel, and how many cannot be reached (by reason, and in all)."""
        counts = {str(c): self.count(c) for c in Channel}
        counts |= {f"unreachable_{reason}": n for reason, n in self.unreachable.items()}
        counts["unreachable"] = sum(self.unreachable.values())
        counts["remaining_budget"] = self.remaining_budget
        return counts


def plan_broadcast(recipients: Iterable[Recipient], *, tag_id: int | None = None, whole_tag: bool = False,
                   limit: int = MONTHLY_MASS_LIMIT, batch: int = MASS_BATCH, subscribe: bool = False) -> BroadcastPlan:
    """Who gets it by which channel: inside the window a customer-service message; else, when
    `subscribe` (a reception's announcement, its 订阅通知 configured), a 订阅通知 to who has one
    left; else a mass message while the month's budget lasts. `whole_tag`: the audience is
    exactly the members of `tag_id`, so one tag send reaches them, when every member is due a mass
    message (none by another channel, none over budget); otherwise openid lists of at most `batch`."""
    unreachable = {reason: 0 for reason in Unreachable}
    cs: list[str] = []
    subscribed: list[str] = []
    mass: list[str] = []
    used_most = 0
    for r in recipients:
        if not r.following_account:
            unreachable[Unreachable.UNFOLLOWED] += 1
        elif r.in_window:
            cs.append(r.openid)
        elif subscribe and r.subscribed:
            subscribed.append(r.openid)
        elif r.mass_used >= limit:
            unreachable[Unreachable.BUDGET] += 1
        else:
            mass.append(r.openid)
            used_most = max(used_most, r.mass_used)
    remaining = limit - used_most if mass else 0
    everyone_by_mass = not cs and not subscribed and unreachable[Unreachable.BUDGET] == 0 \
        and unreachable[Unreachable.UNFOLLOWED] == 0
    if whole_tag and tag_id is not None and everyone_by_mass and mass:
        return BroadcastPlan((PlannedSend(Channel.MASS_TAG, tuple(mass), tag_id),), (), unreachable, remaining)
    if len(mass) < MASS_MIN:
        unreachable[Unreachable.TOO_FEW] += len(mass)
        return BroadcastPlan((), tuple(cs), unreachable, remaining if not mass else 0, tuple(subscribed))
    sends = [PlannedSend(Channel.MASS_OPENIDS, tuple(mass[i:i + batch])) for i in range(0, len(mass), batch)]
    if len(sends[-1].openids) < MASS_MIN:  # never a lone openid in the last list
        moved = sends[-2].openids[-1]
        sends[-2] = replace(sends[-2], openids=sends[-2].openids[:-1])
        sends[-1] = replace(sends[-1], openids=(moved, *sends[-1].openids))
    return BroadcastPlan(tuple(sends), tuple(cs), unreachable, remaining, tuple(subscribed))


def month_of(at: datetime) -> str:
    """The calendar month a mass message counts against: '2026-12'."""
    return f"{at:%Y-%m}"


@dataclass(frozen=True)
class BroadcastSend:
    """One mass call of a broadcast: claimed, sent with its clientmsgid, marked."""

    broadcast_id: int
    seq: int
    channel: Channel
    openids: tuple[str, ...]
    tag_id: int | None = None
    status: SendStatus = SendStatus.PENDING
    claimed_until: datetime | None = None
    attempts: int = 0
    last_error: str = ""
    msg_id: str = ""
    sent_at: datetime | None = None
    id: int | None = None

    @property
    def clientmsgid(self) -> str:
        """Stable across retries and restarts: WeChat refuses a second send with it."""
        return f"ztc-b{self.broadcast_id}-s{self.seq}"


@dataclass(frozen=True)
class Broadcast:
    audience_kind: str  # station | town
    audience: str  # a station code or a town name
    text: str
    created_at: datetime
    plan: dict[str, int] = field(default_factory=dict)  # BroadcastPlan.summary()
    reception_id: int | None = None
    id: int | None = None
    created_by: str = ""  # the staff account that sent it


def progress(sends: Sequence[BroadcastSend]) -> dict[str, dict[str, int]]:
    """Per channel: people in sends that are sent / pending (or under way) / failed."""
    result: dict[str, dict[str, int]] = {}
    for send in sends:
        row = result.setdefault(str(send.channel), {"sent": 0, "pending": 0, "failed": 0})
        key = {SendStatus.SENT: "sent", SendStatus.FAILED: "failed"}.get(send.status, "pending")
        row[key] += len(send.openids)
    return result
