"""How a push can reach its recipient now: the facts (following? window open? subscriptions?)
gathered for bot.core.reach.route, used by delivery to send and by the use cases to word their
replies, so that both say the same thing.

The windows are short-lived state with their own expiry, so they live in the key-value store:
- A message from the user opens the customer-service window: 48 h, at most CS_QUOTA (5)
  messages, under keys.message_window; the user's next message resets it.
- A follow, QR scan or menu click opens a short window: BURST_QUOTA (3) messages within
  BURST_WINDOW (1 min), under keys.burst_window. Used only when the 48 h window is not open.
- 订阅通知 grants per user and subscribe template under keys.subscriptions (recorded from WeChat's
  subscribe_msg_popup_event; a lost key only means a 43101 from WeChat, then held).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core import keys
from bot.core.people import Citizen
from bot.core.ports import UnitOfWork
from bot.core.reach import Channels, Outcome, Recipient, Route, outcome, route
from handlers.services import Services

CS_WINDOW = timedelta(hours=48)
CS_QUOTA = 5
BURST_WINDOW = timedelta(minutes=1)
BURST_QUOTA = 3
LONG_TERM = 1_000_000  # a long-term subscription: no count to use up


@dataclass
class Window:
    kind: str  # "message" (48 h) | "burst" (1 min after follow/scan/click)
    since_or_until: datetime  # the message window's start, the burst window's end
    sent: int = 0


def window_value(at: datetime, sent: int) -> str:
    """`<iso time>|<messages sent>`: the window's start (48 h) or end (burst), and its count."""
    return f"{at.isoformat()}|{sent}"


def parse_window(raw: str | None) -> tuple[datetime, int] | None:
    if not raw:
        return None
    try:
        at, sent = raw.split("|")
        return datetime.fromisoformat(at), int(sent)
    except ValueError:
        return None


async def window_state(services: Services, openid: str) -> tuple[datetime, int] | None:
    """The 48 h window's start and the messages sent in it, or None when it is shut."""
    return parse_window(await services.kv.get(keys.message_window(openid)))


async def open_window(services: Services, citizen: Citizen | None, openid: str, now: datetime) -> Window | None:
    if citizen is not None and not citizen.subscribed:
        return None
    message = await window_state(services, openid)
    if message is not None and now - message[0] < CS_WINDOW and message[1] < CS_QUOTA:
        return Window("message", *message)
    burst = parse_window(await services.kv.get(keys.burst_window(openid)))
    if burst is not None and now < burst[0] and burst[1] < BURST_QUOTA:
        return Window("burst", *burst)
    return None


# --- 订阅通知 grants -------------------------------------------------------------------------------
async def subscriptions(services: Services, openid: str) -> dict[str, int]:
    return _grants(await services.kv.get(keys.subscriptions(openid)))


def _grants(raw: str | None) -> dict[str, int]:
    try:
        value = json.loads(raw) if raw else {}
        return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}
    except (ValueError, TypeError, AttributeError):
        return {}


async def subscribed(services: Services, openids: Sequence[str], template_id: str, chunk: int = 1000) -> set[str]:
    """Of `openids`, those with a send of this 订阅通知 left (a broadcast's plan: few round trips)."""
    found: set[str] = set()
    for i in range(0, len(openids), chunk):
        part = openids[i:i + chunk]
        raws = await services.kv.get_many([keys.subscriptions(o) for o in part])
        found |= {o for o, raw in zip(part, raws, strict=True) if raw and _grants(raw).get(template_id, 0) > 0}
    return found


async def set_subscription(services: Services, openid: str, template_id: str, count: int) -> None:
    grants = await subscriptions(services, openid)
    grants[template_id] = max(count, 0)
    await services.kv.set(keys.subscriptions(openid), json.dumps(grants))


async def grant_subscription(services: Services, openid: str, template_id: str, *, long_term: bool = False) -> None:
    """The user accepted a subscription (one more send; long-term: no limit)."""
    current = (await subscriptions(services, openid)).get(template_id, 0)
    await set_subscription(services, openid, template_id, LONG_TERM if long_term else min(current + 1, LONG_TERM))


async def use_subscription(services: Services, openid: str, template_id: str) -> None:
    current = (await subscriptions(services, openid)).get(template_id, 0)
    if current < LONG_TERM:
        await set_subscription(services, openid, template_id, current - 1)


# --- the route ------------------------------------------------------------------------------------
def channels_for(services: Services, template_key: str) -> Channels:
    settings = services.settings
    if not template_key:
        return Channels()
    return Channels(template_id=settings.template_id(template_key), subscribe_id=settings.subscribe_id(template_key))


@dataclass
class Reach:
    route: Route
    window: Window | None  # the open window (for CUSTOM)
    channels: Channels


async def reach(services: Services, openid: str, template_key: str, *, uow: UnitOfWork | None = None) -> Reach:
    """How a message with this template key would go to `openid` now ("" openid: unreachable)."""
    channels = channels_for(services, template_key)
    if not openid:
        return Reach(route(Recipient(""), channels), None, channels)
    if uow is None:
        async with services.uow() as own:
            citizen = await own.citizens.get(openid)
    else:
        citizen = await uow.citizens.get(openid)
    window = await open_window(services, citizen, openid, services.clock.now())
    grants = (await subscriptions(services, openid)).get(channels.subscribe_id, 0) if channels.subscribe_id else 0
    recipient = Recipient(openid, following=citizen is None or citizen.subscribed,
                          window_open=window is not None, subscriptions=grants)
    return Reach(route(recipient, channels), window, channels)


async def reach_outcome(services: Services, openid: str, template_key: str, *, uow: UnitOfWork | None = None) -> Outcome:
    return outcome((await reach(services, openid, template_key, uow=uow)).route)


async def reach_text(services: Services, openid: str, template_key: str, who: str, *,
                     uow: UnitOfWork | None = None) -> str:
    """One sentence for a reply: the push to `who` is sent / comes when they next open the account /
    cannot be delivered and staff will follow up."""
    result = await reach_outcome(services, openid, template_key, uow=uow)
    return services.texts.get(f"reach_{result}", who=who)
