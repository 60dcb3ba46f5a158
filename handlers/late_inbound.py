"""Messages past the reply deadline. bot/webhook.py answers WeChat `success` at the deadline, so
WeChat never sends such a message again: it is kept in the database before that answer
(`LateReplies.keep`); when its handler finishes, the reply is pushed and the record forgotten in
one transaction (`answered`). When the handler failed (a store was down, the user's previous
message held the lock too long) or its process died, nothing forgets it, and the replay job
(`replay_due`, bot/bootstrap.py JOBS) handles it again once `late_retry_after` has passed.

A replay is idempotent where it matters: effects (a ticket, a relay, a rating) are stored with the
message's exactly-once record, and a message found there is answered from it. Remaining window:
a process that dies after the effect's commit but before `answered` commits pushes its reply
twice (once replayed from the record), and dialogue state a dying handler already wrote (a form
step) is applied again.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from bot.core import keys
from bot.core.inbound import FIRST_DELIVERY, Inbound, InboundKind, LateInbound
from bot.core.outbound import OutboxMessage
from bot.core.ports import LockTimeout, StoreUnavailable
from bot.core.privacy import mask_openid
from handlers.services import Services

log = logging.getLogger(__name__)

Handle = Callable[[Inbound], Awaitable[str | None]]

MAX_ATTEMPTS = 5  # then the citizen is asked to send it again
REPLAY_BATCH = 50
_EXCERPT = 20  # characters of the message quoted when asking to send it again


class LateReplies:
    """The webhook's LateMessages, in the database."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def keep(self, inbound: Inbound) -> None:
        now = self._services.clock.now()
        retry_at = now + timedelta(seconds=self._services.settings.late_retry_after)
        async with self._services.uow() as uow:
            await uow.late_inbound.keep(LateInbound(inbound, kept_at=now, next_try_at=retry_at))
            await uow.commit()

    async def answered(self, inbound: Inbound, reply: str | None) -> None:
        async with self._services.uow() as uow:  # its commit kicks delivery
            if reply:
                await uow.outbox.add(OutboxMessage(recipient_openid=inbound.openid, text=reply,
                                                   created_at=self._services.clock.now()))
            await uow.late_inbound.forget(inbound.dedupe_key)
            await uow.commit()
        if reply:
            log.info("late reply for %s queued for push", mask_openid(inbound.openid))


async def replay_due(services: Services, handle: Handle, limit: int = REPLAY_BATCH) -> int:
    """Handle again the kept messages whose reply was not pushed in time; how many were taken.
    Each is claimed first (its next try moved on), so another worker or a later run skips it.
    One user's messages run in the order they came, different users side by side."""
    now = services.clock.now()
    wait = timedelta(seconds=services.settings.late_retry_after)
    async with services.uow() as uow:
        due = list(await uow.late_inbound.due(now, limit))
        for entry in due:
            entry.attempts += 1
            entry.next_try_at = now + wait * (entry.attempts + 1)
            await uow.late_inbound.save(entry)
        await uow.commit()
    by_user: dict[str, list[LateInbound]] = defaultdict(list)
    for entry in due:
        by_user[entry.inbound.openid].append(entry)
    replies = LateReplies(services)
    await asyncio.gather(*(_replay_user(services, replies, handle, entries) for entries in by_user.values()))
    return len(due)


async def _replay_user(services: Services, replies: LateReplies, handle: Handle,
                       entries: Sequence[LateInbound]) -> None:
    for entry in entries:
        inbound = entry.inbound
        if await _still_running(services, inbound):  # only slow: its own handler pushes the reply
            continue
        token = FIRST_DELIVERY.set(False)  # it may have had its effect: look for its record
        try:
            reply = await handle(inbound)
        except Exception as exc:
            if entry.attempts < MAX_ATTEMPTS:
                log.warning("late message from %s failed again (try %d of %d): %s", mask_openid(inbound.openid),
                            entry.attempts, MAX_ATTEMPTS, type(exc).__name__)
                continue
            log.error("late message from %s given up after %d tries", mask_openid(inbound.openid), entry.attempts,
                      exc_info=not isinstance(exc, StoreUnavailable | LockTimeout))
            reply = _ask_again(services, inbound)
        finally:
            FIRST_DELIVERY.reset(token)
        try:
            await replies.answered(inbound, reply)
        except StoreUnavailable as exc:  # still kept: tried again later
            log.warning("late reply for %s not stored: %s", mask_openid(inbound.openid), exc)


async def _still_running(services: Services, inbound: Inbound) -> bool:
    try:
        return await services.kv.get(keys.DEDUPE_PREFIX + inbound.dedupe_key) == keys.DEDUPE_PENDING
    except StoreUnavailable:
        return False


def _ask_again(services: Services, inbound: Inbound) -> str:
    if inbound.kind == InboundKind.TEXT and inbound.text.strip():
        text = inbound.text.strip()
        excerpt = text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"
        return services.texts.get("late_message_failed", excerpt=excerpt)
    return services.texts.get("wechat_handler_error")
