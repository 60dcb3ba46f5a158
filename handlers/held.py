"""Held messages: kept until their recipient writes again (or follows/scans/clicks), then
released to delivery. Also where a user's contact opens the windows (handlers/channels.py).

Held digests (Purpose.DIGEST, e.g. 云直播 answers that came after the window's 5 messages were used)
of one template key are joined into one message when released, while it fits one WeChat message:
the citizen gets one message, not a queue that uses up the new window; the others are `dropped`
with "joined into outbox <id>" (`zhitongche outbox` shows it)."""
from __future__ import annotations

import logging

from bot.core import keys
from bot.core.outbound import OutboxMessage, OutboxStatus
from bot.core.people import Citizen
from bot.core.privacy import mask_openid
from bot.core.reach import Purpose
from handlers.channels import BURST_WINDOW, CS_WINDOW, open_window, window_value
from handlers.services import Services

log = logging.getLogger(__name__)

BURST_EVENTS = frozenset({"subscribe", "scan", "click"})
DIGEST_MAX_BYTES = 1800  # one customer-service text (WeChat: 2048 bytes) with room to spare
DIGEST_SEPARATOR = "\n\n"
JOINED = "joined into outbox "


async def record_inbound(services: Services, openid: str, *, event: str = "", kick: bool = True) -> int:
    """Note that the user reached us: event "" for a message (opens the 48 h window), or the
    lower-case event name (subscribe/scan/click open the 1-minute window; others change nothing).
    Held messages for the user go back to pending; returns how many. `kick=False`: the caller
    kicks delivery itself once the user's message was handled, so that a held notice the message
    makes stale (转 #1002 …) is checked against the ticket after that change, not before.

    A message costs no database work: the window lives in the key-value store (it is state that
    expires by itself), and held messages are looked up only when some were held."""
    now = services.clock.now()
    event = event.lower()
    if event and event not in BURST_EVENTS:
        return 0
    if event:
        async with services.uow() as uow:
            citizen = await uow.citizens.get(openid) or Citizen(openid=openid)
            citizen.subscribed = True
            await uow.citizens.save(citizen)
            await uow.commit()
        sets = [(keys.burst_window(openid), window_value(now + BURST_WINDOW, 0), BURST_WINDOW.total_seconds() * 2)]
        deletes: list[str] = []
    else:
        sets = [(keys.message_window(openid), window_value(now, 0), CS_WINDOW.total_seconds())]
        deletes = [keys.burst_window(openid)]  # the 48 h window supersedes it
    # one round trip: the window written, the held mark read
    held, = await services.kv.batch(sets=sets, deletes=deletes, gets=[keys.held_mark(openid)])
    if held is not None:
        return await release_held(services, openid, kick=kick)
    return 0


async def release_held(services: Services, openid: str, *, kick: bool = True) -> int:
    """Held messages for this user become pending again; returns how many."""
    await services.kv.delete(keys.held_mark(openid))  # first: a message held meanwhile marks it again
    async with services.uow() as uow:
        held = list(await uow.outbox.held_for(openid))
        for message in join_digests(held):
            await uow.outbox.save(message)
        held = [m for m in held if m.status is OutboxStatus.HELD]
        for message in held:
            message.status = OutboxStatus.PENDING
            message.next_attempt_at = None
            await uow.outbox.save(message)
        await uow.commit()
    if held:
        log.info("released %d held messages for %s", len(held), mask_openid(openid))
        if kick:
            services.kick_delivery()
    return len(held)


def join_digests(held: list[OutboxMessage]) -> list[OutboxMessage]:
    """Consecutive digests of one template key (oldest first) join the first of them while the text
    fits; returns the messages changed (the first ones' text, the joined ones dropped)."""
    changed: list[OutboxMessage] = []
    into: OutboxMessage | None = None
    for message in held:
        if message.purpose != Purpose.DIGEST:
            into = None
            continue
        text = into.text + DIGEST_SEPARATOR + message.text if into is not None else ""
        if into is not None and into.template_key == message.template_key and \
                len(text.encode("utf-8")) <= DIGEST_MAX_BYTES:
            into.text = text
            message.status, message.last_error, message.next_attempt_at = OutboxStatus.DROPPED, f"{JOINED}{into.id}", None
            changed += [m for m in (into, message) if m not in changed]
        else:
            into = message
    return changed


async def release_reachable(services: Services) -> int:
    """Held messages whose recipient can be reached again: a safety net for a lost `held:` mark
    (a restarted Redis) or a message held just as the user wrote."""
    now = services.clock.now()
    async with services.uow() as uow:
        recipients = {m.recipient_openid for m in await uow.outbox.list((OutboxStatus.HELD,))}
    released = 0
    for openid in recipients:
        if await open_window(services, None, openid, now) is not None:
            released += await release_held(services, openid)
    return released


async def close_window(services: Services, openid: str) -> None:
    """WeChat says the window is shut: it opens again when the user next writes."""
    await services.kv.delete(keys.message_window(openid))
    await services.kv.delete(keys.burst_window(openid))


async def hold(services: Services, message: OutboxMessage, reason: str) -> None:
    message.status = OutboxStatus.HELD
    message.last_error = reason
    message.next_attempt_at = None
    async with services.uow() as uow:
        await uow.outbox.save(message)
        await uow.commit()
    await services.kv.set(keys.held_mark(message.recipient_openid), "1")  # released when the user writes
    log.info("outbox %s held for %s: %s", message.id, mask_openid(message.recipient_openid), reason)
