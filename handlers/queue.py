"""The station queues: tickets filed while nobody was on duty get a deputy when a shift starts.

`assign_waiting` is cheap when nothing waits, so the app calls it every minute at second 0
(shifts start on whole minutes).
"""
from __future__ import annotations

import logging

from bot.domain import Ticket
from handlers import notify
from handlers.routing import choose_deputy
from handlers.services import Services
from handlers.tickets import ASSIGN_LOCK, on_duty_deputies, remember_last_assigned, rr_key

log = logging.getLogger(__name__)


async def assign_waiting(services: Services) -> int:
    """Assign every waiting ticket whose station has someone on duty now (same policy as a new
    report: fewest open tickets, round robin on ties). Returns how many were assigned."""
    texts, kv = services.texts, services.kv
    now = services.clock.now()
    assigned = 0
    last_by_station: dict[str, str] = {}
    async with kv.lock(ASSIGN_LOCK):
        async with services.uow() as uow:
            waiting = await uow.tickets.waiting()
            if not waiting:
                return 0
            by_station: dict[str, list[Ticket]] = {}
            for ticket in waiting:  # oldest first, and stays so within a station
                by_station.setdefault(ticket.station_code, []).append(ticket)

            for station_code, tickets in by_station.items():
                deputies = {d.code: d for d in await on_duty_deputies(uow, station_code, now)}
                if not deputies:
                    continue
                codes = sorted(deputies)
                # counted once and kept up to date here: several tickets may go out in one drain
                counts = dict(await uow.tickets.open_counts(codes))
                last = await kv.get(rr_key(station_code))
                for ticket in tickets:
                    chosen = choose_deputy(codes, counts, last)
                    if chosen is None:
                        break
                    deputy = deputies[chosen]
                    ticket.assign(chosen, now)
                    await uow.tickets.save(ticket)
                    for message in (notify.citizen_assigned(texts, ticket, deputy, now),
                                    notify.deputy_assignment(texts, ticket, deputy, now)):
                        if message is not None:
                            await uow.outbox.add(message)
                    counts[chosen] = counts.get(chosen, 0) + 1
                    last = chosen
                    assigned += 1
                    log.info("queued ticket #%d at %s assigned to %s", ticket.number, station_code, chosen)
                if last is not None:
                    last_by_station[station_code] = last
            await uow.commit()
        for station_code, last in last_by_station.items():
            await remember_last_assigned(kv, station_code, last)
    if assigned:
        services.kick_delivery()
    return assigned

