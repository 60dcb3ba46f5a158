"""Broadcasts to a station's or town's followers (the console and POST /api/v1/broadcasts call
these): the plan, the monthly budget, the dry run, and sending exactly once.

Creating a broadcast stores, in one transaction, the broadcast, its planned mass sends (rows a
sender claims and marks, bot/core/broadcasts.py) and an outbox message for each follower inside
the 48 h window (handlers/delivery.py delivers those as customer-service messages). A reception's
announcement goes as a 订阅通知 (one send row each) to followers with a reception-notice
subscription left, when settings.subscribe_id_reception is set; whom it went to is recorded with
the reception's reminders, so that a change or a cancellation reaches them
(handlers/reception_notices.py). Sending is `send_pending`, run at once and by the
`send_broadcasts` job: a send whose sender was killed is taken again when its claim expires;
WeChat refuses the repeated clientmsgid (45065), which counts as sent; a 订阅通知 whose sender
was killed mid-call is listed as a failure (unconfirmed) instead, to retry by hand."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from bot.core.broadcasts import (
    Broadcast,
    BroadcastPlan,
    BroadcastSend,
    LEASE_EXPIRED,
    MONTHLY_MASS_LIMIT,
    UNCONFIRMED,
    Channel,
    Recipient,
    SendStatus,
    Unreachable,
    month_of,
    plan_broadcast,
    progress,
)
from bot.core.errors import DomainError
from bot.core.outbound import OutboxMessage
from bot.core.ports import CLIENTMSGID_EXISTS, MassGateway, UnitOfWork, WeChatAPIError
from bot.core.receptions import Reception
from bot.core.privacy import mask_openid
from handlers import channels, delivery
from handlers.pacing import MassPacer
from handlers.reception_notices import RECEPTION_KEY, announced_kind, deputies_note, reception_fields
from handlers.receptions import reception_line
from handlers.services import Services

log = logging.getLogger(__name__)

AUDIENCES = ("station", "town")
CLAIM_LEASE = timedelta(minutes=2)  # longer than one mass call (10 s timeout) with room to spare
# last_error of a 订阅通知 not sent (bot/console words them in Chinese)
CANCELLED = "reception cancelled"
NOT_CONFIGURED = "no reception 订阅通知 template configured"


@dataclass(frozen=True)
class BroadcastRequest:
    audience_kind: str  # station | town
    audience: str  # station code | town name
    text: str = ""
    reception_id: int | None = None
    dry_run: bool = False
    created_by: str = ""  # the staff account sending it


def request_from_json(body: Any) -> BroadcastRequest:
    """POST /api/v1/broadcasts: `station` or `town`, `text` or `reception_id`, optional `dry_run`."""
    body = body if isinstance(body, Mapping) else {}
    kinds = [k for k in AUDIENCES if isinstance(body.get(k), str) and body[k].strip()]
    if len(kinds) != 1:
        raise DomainError("broadcast_bad_audience")
    text, reception_id = body.get("text"), body.get("reception_id")
    has_text = isinstance(text, str) and bool(text.strip())
    has_reception = isinstance(reception_id, int) and not isinstance(reception_id, bool)
    if has_text == has_reception:
        raise DomainError("broadcast_bad_content")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise DomainError("broadcast_bad_content")
    return BroadcastRequest(kinds[0], body[kinds[0]].strip(), text.strip() if has_text else "",
                            reception_id if has_reception else None, dry_run)


async def _station_codes(uow: UnitOfWork, kind: str, audience: str) -> list[str]:
    stations = await uow.stations.list()
    codes = [s.code for s in stations if (s.code if kind == "station" else s.town) == audience]
    if not codes:
        raise DomainError("broadcast_unknown_audience", audience=audience)
    return codes


async def _text(uow: UnitOfWork, services: Services, request: BroadcastRequest) -> str:
    if request.reception_id is None:
        return request.text
    reception: Reception | None = await uow.receptions.get(request.reception_id)
    if reception is None or not reception.scheduled:
        raise DomainError("reception_not_found", id=request.reception_id)
    names = {d.code: d.name for d in await uow.deputies.list()}
    return services.texts.get("broadcast_announcement", line=reception_line(reception, names, services.texts))


async def _recipients(services: Services, uow: UnitOfWork, openids: Sequence[str],
                      subscribe_id: str = "") -> list[Recipient]:
    now = services.clock.now()
    used = await uow.broadcasts.mass_used(openids, month_of(now))
    subscribed = await channels.subscribed(services, openids, subscribe_id) if subscribe_id else set()
    recipients = []
    for openid in openids:
        citizen = await uow.citizens.get(openid)
        window = await delivery.window_state(services, openid)
        in_window = window is not None and now - window[0] < delivery.CS_WINDOW and window[1] < delivery.CS_QUOTA
        recipients.append(Recipient(openid, citizen is None or citizen.subscribed, in_window, used.get(openid, 0),
                                    openid in subscribed))
    return recipients


async def _town_tag(uow: UnitOfWork, request: BroadcastRequest, follows: Sequence[Any],
                    codes: Sequence[str]) -> tuple[int | None, bool]:
    """A town's tag, and whether its members are exactly this audience: every follow mirrored,
    no stop waiting to be untagged."""
    if request.audience_kind != "town":
        return None, False
    tag_id = await uow.follows.town_tag(request.audience)
    if tag_id is None:
        return None, False
    mirrored = all(f.tagged for f in follows) and not await uow.follows.untagged(1, codes)
    return tag_id, mirrored


async def create_broadcast(services: Services, request: BroadcastRequest) -> tuple[Broadcast | None, BroadcastPlan]:
    """Plan (and unless a dry run, store) a broadcast. Refused (DomainError) when nobody can be
    reached, e.g. every follower already had this month's 4 mass messages."""
    async with services.uow() as uow:
        codes = await _station_codes(uow, request.audience_kind, request.audience)
        text = await _text(uow, services, request)
        follows = await uow.follows.followers(codes)
        openids = sorted({f.openid for f in follows})
        tag_id, whole_tag = await _town_tag(uow, request, follows, codes)
        subscribe_id = services.settings.subscribe_id(RECEPTION_KEY) if request.reception_id is not None else ""
        plan = plan_broadcast(await _recipients(services, uow, openids, subscribe_id), tag_id=tag_id,
                              whole_tag=whole_tag, batch=services.settings.broadcast_batch, subscribe=bool(subscribe_id))
        if plan.reached == 0:
            key = ("broadcast_budget_exhausted" if plan.unreachable[Unreachable.BUDGET]
                   else "broadcast_unreachable" if openids else "broadcast_nobody")
            raise DomainError(key, audience=request.audience)
        if request.dry_run:
            return None, plan
        now = services.clock.now()
        sends = [BroadcastSend(0, seq, s.channel, s.openids, s.tag_id) for seq, s in enumerate(plan.sends, 1)]
        sends += [BroadcastSend(0, seq, Channel.SUBSCRIBE, (openid,))
                  for seq, openid in enumerate(plan.subscribe, len(sends) + 1)]
        broadcast = await uow.broadcasts.add(
            Broadcast(request.audience_kind, request.audience, text, now, plan.summary(), request.reception_id,
                      created_by=request.created_by), sends)
        for openid in plan.customer_service:
            await uow.outbox.add(OutboxMessage(recipient_openid=openid, text=text, created_at=now))
        if request.reception_id is not None:  # they are told, should it change or be cancelled
            await uow.reminders.claim(request.reception_id, announced_kind(broadcast.id), plan.openids, now)  # type: ignore[arg-type]
        await uow.commit()
    log.info("broadcast %s planned: %s", broadcast.id, plan.summary())
    return broadcast, plan


async def send_pending(services: Services, gateway: MassGateway, broadcast_id: int | None = None,
                       pacer: MassPacer | None = None) -> int:
    """Claim and send the pending sends (of one broadcast, or all), each mass call paced within
    WeChat's rate limit (handlers/pacing.py); how many were sent."""
    pacer = pacer or MassPacer(services.kv, services.settings.broadcast_calls_per_minute)
    lease = timedelta(seconds=services.settings.broadcast_claim_seconds) if services.settings.broadcast_claim_seconds \
        else CLAIM_LEASE
    fields: dict[int, dict[str, str] | None] = {}  # per broadcast: its 订阅通知 fields (None: cancelled)
    sent = 0
    while True:
        now = services.clock.now()
        async with services.uow() as uow:
            send = await uow.broadcasts.claim(broadcast_id, now, now + lease)
            broadcast = await uow.broadcasts.get(send.broadcast_id) if send else None
            if broadcast is not None and send is not None and send.channel == Channel.SUBSCRIBE \
                    and broadcast.id not in fields:
                fields[broadcast.id] = await _subscribe_fields(services, uow, broadcast)  # type: ignore[index]
            await uow.commit()
        if send is None or broadcast is None:
            return sent
        if send.channel == Channel.SUBSCRIBE:
            sent += await _send_subscribe(services, gateway, send, fields[broadcast.id])  # type: ignore[index]
            continue
        await pacer.wait()  # the claim's lease is far longer than a slot
        sent += await _send_one(services, gateway, broadcast, send)


async def _subscribe_fields(services: Services, uow: UnitOfWork, broadcast: Broadcast) -> dict[str, str] | None:
    """The 订阅通知 fields of the reception as it is now (None when it was cancelled meanwhile)."""
    reception = await uow.receptions.get(broadcast.reception_id) if broadcast.reception_id is not None else None
    if reception is None or not reception.scheduled:
        return None
    names = {d.code: d.name for d in await uow.deputies.list()}
    return reception_fields(reception, deputies_note(reception, names, services.texts))


async def _send_subscribe(services: Services, gateway: MassGateway, send: BroadcastSend,
                          data: dict[str, str] | None) -> int:
    """One 订阅通知. Never sent twice unasked: a send whose sender died mid-call (its claim ran out)
    is marked failed as unconfirmed, not sent again."""
    [openid] = send.openids
    template_id = services.settings.subscribe_id(RECEPTION_KEY)
    error = UNCONFIRMED if send.last_error == LEASE_EXPIRED else \
        CANCELLED if data is None else NOT_CONFIGURED if not template_id else ""
    if not error:
        try:
            await gateway.send_subscribe(openid, template_id, data)  # type: ignore[arg-type]
        except WeChatAPIError as refused:
            if refused.errcode in delivery.NO_SUBSCRIPTION_ERRORS:
                await channels.set_subscription(services, openid, template_id, 0)
            error = f"{refused.errcode} {refused.errmsg}"
        except Exception as failed:  # network, timeout: WeChat may or may not have it
            error = f"{UNCONFIRMED}: {type(failed).__name__}"
    if error:
        log.warning("broadcast %s 订阅通知 %d to %s failed: %s", send.broadcast_id, send.seq, mask_openid(openid),
                    error.split(":")[0])
        await _mark(services, replace(send, status=SendStatus.FAILED, claimed_until=None, last_error=error[:500]))
        return 0
    await channels.use_subscription(services, openid, template_id)
    await _mark(services, replace(send, status=SendStatus.SENT, claimed_until=None, last_error="",
                                  sent_at=services.clock.now()))
    return 1


async def _send_one(services: Services, gateway: MassGateway, broadcast: Broadcast, send: BroadcastSend) -> int:
    try:
        if send.channel == Channel.MASS_TAG and send.tag_id is not None:
            msg_id = await gateway.mass_send_tag(send.tag_id, broadcast.text, send.clientmsgid)
        else:
            msg_id = await gateway.mass_send(send.openids, broadcast.text, send.clientmsgid)
    except WeChatAPIError as error:
        if error.errcode != CLIENTMSGID_EXISTS:
            log.warning("broadcast %s send %d failed: %s", broadcast.id, send.seq, error.errcode)
            await _mark(services, replace(send, status=SendStatus.FAILED, claimed_until=None,
                                          last_error=f"{error.errcode} {error.errmsg}"[:500]))
            return 0
        msg_id = "dup"  # an earlier attempt of this very send reached WeChat: it is sent
    now = services.clock.now()
    await _mark(services, replace(send, status=SendStatus.SENT, claimed_until=None, msg_id=msg_id, sent_at=now,
                                  last_error=""), count_budget=True)
    return 1


async def _mark(services: Services, send: BroadcastSend, count_budget: bool = False) -> None:
    async with services.uow() as uow:
        await uow.broadcasts.save_send(send)
        if count_budget:
            await uow.broadcasts.count_mass(send.openids, month_of(send.sent_at or services.clock.now()))
        await uow.commit()


async def retry_failed(services: Services, broadcast_id: int) -> int:
    """Failed sends go back to pending (the console's 重试); how many."""
    async with services.uow() as uow:
        failed = [s for s in await uow.broadcasts.sends(broadcast_id) if s.status == SendStatus.FAILED]
        for send in failed:
            await uow.broadcasts.save_send(replace(send, status=SendStatus.PENDING))
        await uow.commit()
    return len(failed)


async def broadcast_status(services: Services, broadcast_id: int) -> dict[str, Any]:
    """GET /api/v1/broadcasts/{id}: the plan, progress per channel, the failures."""
    async with services.uow() as uow:
        broadcast = await uow.broadcasts.get(broadcast_id)
        if broadcast is None:
            raise DomainError("broadcast_not_found", id=broadcast_id)
        sends = await uow.broadcasts.sends(broadcast_id)
    return {"id": broadcast.id, broadcast.audience_kind: broadcast.audience, "plan": broadcast.plan,
            "progress": progress(sends),
            "failures": [{"seq": s.seq, "channel": str(s.channel), "people": len(s.openids), "error": s.last_error,
                          "reason": failure_reason(services, s.last_error), "attempts": s.attempts}
                         for s in sends if s.status == SendStatus.FAILED]}


_REASONS = {UNCONFIRMED: "broadcast_failed_unconfirmed", CANCELLED: "broadcast_failed_cancelled",
            NOT_CONFIGURED: "broadcast_failed_not_configured"}


def failure_reason(services: Services, error: str) -> str:
    """Why a send failed, in Chinese for staff."""
    for prefix, key in _REASONS.items():
        if error.startswith(prefix):
            return services.texts.get(key)
    if error.split(" ")[0] in {str(c) for c in delivery.NO_SUBSCRIPTION_ERRORS}:
        return services.texts.get("broadcast_failed_no_subscription")
    return services.texts.get("broadcast_failed_wechat", error=error)


# --- the WeChat tags mirror the follows ----------------------------------------------------------
TAG_BATCH = 50  # tags/members/batchtagging: at most 50 openids a call
TAG_NAME = "接待·{town}"


async def sync_tags(services: Services, gateway: MassGateway, limit: int = 1000) -> int:
    """Mirror pending follows and stops as WeChat user tags, one tag per town (an account has
    at most 100 tags; Wujiang has far fewer towns than stations). How many follows were synced;
    a WeChat error stops the pass (the rest stays pending for the next run)."""
    async with services.uow() as uow:
        pending = await uow.follows.untagged(limit)
        town_of = {s.code: s.town for s in await uow.stations.list()}
    by_town: dict[str, list[Any]] = {}
    for follow in pending:
        if follow.station_code in town_of:
            by_town.setdefault(town_of[follow.station_code], []).append(follow)
    synced = 0
    for town, follows in by_town.items():
        try:
            synced += await _sync_town(services, gateway, town, follows, town_of)
        except WeChatAPIError as error:
            log.warning("tag sync for %s stopped: WeChat error %s", town, error.errcode)
            break
    return synced


async def _sync_town(services: Services, gateway: MassGateway, town: str, follows: Sequence[Any],
                     town_of: Mapping[str, str]) -> int:
    async with services.uow() as uow:
        tag_id = await uow.follows.town_tag(town)
    if tag_id is None:
        tag_id = await gateway.create_tag(TAG_NAME.format(town=town)[:30])
        async with services.uow() as uow:
            await uow.follows.set_town_tag(town, tag_id)
            await uow.commit()
    add = sorted({f.openid for f in follows if f.active})
    stopped = sorted({f.openid for f in follows if not f.active} - set(add))
    async with services.uow() as uow:  # untag only who follows no other station of the town
        remove = [o for o in stopped
                  if not any(town_of.get(f.station_code) == town for f in await uow.follows.of_citizen(o))]
    for call, openids in ((gateway.tag_users, add), (gateway.untag_users, remove)):
        for i in range(0, len(openids), TAG_BATCH):
            await call(tag_id, openids[i:i + TAG_BATCH])
    async with services.uow() as uow:
        for follow in follows:
            await uow.follows.mark_tagged(follow.openid, follow.station_code)
        await uow.commit()
    return len(follows)


async def station_budgets(services: Services, codes: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per station (the console's broadcast page): its followers, how many mass messages each of
    those with budget left can still get this month (the fewest), and how many have none left."""
    async with services.uow() as uow:
        follows = await uow.follows.followers(codes)
        used = await uow.broadcasts.mass_used(sorted({f.openid for f in follows}), month_of(services.clock.now()))
    result = {code: {"followers": 0, "remaining": MONTHLY_MASS_LIMIT, "exhausted": 0} for code in codes}
    for follow in follows:
        row, spent = result[follow.station_code], used.get(follow.openid, 0)
        row["followers"] += 1
        if spent >= MONTHLY_MASS_LIMIT:
            row["exhausted"] += 1
        else:
            row["remaining"] = min(row["remaining"], MONTHLY_MASS_LIMIT - spent)
    for row in result.values():
        if row["followers"] and row["exhausted"] == row["followers"]:
            row["remaining"] = 0
    return result
