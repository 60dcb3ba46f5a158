"""Pushes that failed for good reach a person. Delivery gives a message up after its last attempt
(OutboxMessage.give_up records PushFailed); `record_push_failure` stores it under the station of
the ticket it was about, in the same transaction, for the station's staff (outbox.failures; the
console reads it) and for the next on-duty deputy of that station, who sees it in 我的工单.
A push no way can deliver (PushUndeliverable: a deputy who bound no WeChat, a user who left the
account) is filed the same way, at once: the ticket does not wait silently on someone unreachable."""
from __future__ import annotations

import logging

from bot.core.events import PushFailed, PushUndeliverable
from bot.core.outbound import PushFailure
from bot.core.people import Deputy
from bot.core.ports import UnitOfWork
from handlers.assignment import on_duty_deputies
from handlers.services import Services

log = logging.getLogger(__name__)


async def record_push_failure(event: PushFailed | PushUndeliverable, uow: UnitOfWork) -> None:
    ticket = await uow.tickets.get(event.ticket_number) if event.ticket_number is not None else None
    await uow.outbox.record_failure(PushFailure(
        message_id=event.message_id, station_code=ticket.station_code if ticket else "",
        ticket_number=event.ticket_number, recipient_openid=event.recipient_openid, error=event.error,
        failed_at=event.at))


async def failed_pushes_note(services: Services, deputy: Deputy) -> str | None:
    """For an on-duty deputy's 我的工单: the station's failed pushes no deputy was shown yet (then
    marked shown), or None."""
    now = services.clock.now()
    async with services.uow() as uow:
        if deputy.code not in {d.code for d in await on_duty_deputies(uow, deputy.station_code, now)}:
            return None
        failures = await uow.outbox.failures(deputy.station_code, untold=True)
        if not failures:
            return None
        await uow.outbox.mark_told([f.message_id for f in failures], now)
        await uow.commit()
    texts = services.texts
    numbers = sorted({f.ticket_number for f in failures if f.ticket_number is not None})
    log.info("deputy %s told of %d failed pushes", deputy.code, len(failures))
    return texts.get("deputy_failed_pushes", count=len(failures),
                     tickets="、".join(f"#{n}" for n in numbers))
