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
    report), one station at a time under its own lock. Returns how many were assigned; the pushes
    follow from TicketAssigned."""
    async with services.uow() as uow:
        stations = sorted({t.station_code for t in await uow.tickets.waiting()})
    assigned = 0
    for station_code in stations:
        assigned += await _assign_station(services, station_code)
    return assigned


async def _assign_station(services: Services, station_code: str) -> int:
    now = services.clock.now()
    assigned = 0
    async with services.kv.lock(keys.assign_lock(station_code)):
        async with services.uow() as uow:
            waiting = await uow.tickets.waiting(station_code)  # again under the lock: oldest first
            if not waiting:
                return 0
            assigner = Assigner(uow, services.kv, now)
            for ticket in waiting:
                deputy = await assigner.pick(station_code)
                if deputy is None:
                    break  # nobody on duty here now
                ticket.assign(deputy.code, now)
                await uow.tickets.save(ticket)
                assigned += 1
                log.info("queued ticket #%d at %s assigned to %s", ticket.number, station_code, deputy.code)
            await uow.commit()
        await assigner.remember()
    return assigned
