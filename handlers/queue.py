"""The station queues: tickets filed while nobody was on duty get a deputy when a shift starts.

`assign_waiting` is cheap when nothing waits; bot/bootstrap.py's job table runs it every minute
at second 0 (shifts start on whole minutes).
"""
from __future__ import annotations

import logging

from bot.core import keys
from handlers.assignment import Assigner
from handlers.services import Services

log = logging.getLogger(__name__)


async def assign_waiting(services: Services) -> int:
    """Assign every waiting ticket whose station has someone on duty now (same policy as a new
    report). Returns how many were assigned; the pushes follow from TicketAssigned."""
    now = services.clock.now()
    assigned = 0
    async with services.kv.lock(keys.ASSIGN_LOCK):
        async with services.uow() as uow:
            waiting = await uow.tickets.waiting()  # oldest first
            if not waiting:
                return 0
            assigner = Assigner(uow, services.kv, now)
            for ticket in waiting:
                deputy = await assigner.pick(ticket.station_code)
                if deputy is None:
                    continue
                ticket.assign(deputy.code, now)
                await uow.tickets.save(ticket)
                assigned += 1
                log.info("queued ticket #%d at %s assigned to %s", ticket.number, ticket.station_code, deputy.code)
            await uow.commit()
        await assigner.remember()
    return assigned
