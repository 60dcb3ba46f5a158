"""Filing a report: route it, create the ticket, assign an on-duty deputy (handlers/assignment.py).

Nobody on duty: the ticket stays `filed` in the station queue (handlers/queue.py assigns it when
a shift starts). Who is told what is not decided here: the ticket records TicketFiled and the
push handlers (handlers/notify.py) store the messages in the same transaction.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.core import keys
from bot.core.people import Deputy, Station
from bot.core.ports import UnitOfWork
from bot.core.privacy import mask_openid
from bot.core.staff import AuditEntry
from bot.core.tickets import Ticket
from handlers.assignment import Assigner
from handlers.routing import choose_station
from handlers.services import ReportDraft, Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filed:
    """A filed ticket and the names its reply shows, read in the unit of work that filed it."""

    ticket: Ticket
    station: Station | None
    deputy: Deputy | None


async def submit_report(services: Services, draft: ReportDraft,
                        audit: Callable[[Ticket], AuditEntry] | None = None) -> Ticket:
    """File the report as a new ticket (all in one unit of work) and return it. `audit` (staff
    filing for a visitor) gives the audit entry stored with it.

    Once the unit of work is committed the ticket exists: nothing after that (round robin state,
    releasing the lock, kicking delivery) may make this raise, or the citizen would be told the
    report failed and send 是 again, filing it twice. Such failures are logged."""
    return (await _file(services, draft, audit)).ticket


async def _file(services: Services, draft: ReportDraft, audit: Callable[[Ticket], AuditEntry] | None = None, *,
                station_code: str | None = None) -> Filed:
    """submit_report, with the station and deputy names; `station_code`: already routed."""
    now = services.clock.now()
    filed: Ticket | None = None
    station: Station | None = None
    deputy: Deputy | None = None
    code = station_code or await _route(services, draft)  # before the lock: only this station's assignments wait
    try:
        async with services.kv.lock(keys.assign_lock(code)):
            async with services.uow() as uow:
                ticket, assigner = await file_in(uow, services, draft, now, code)
                station, deputy = await _names(uow, ticket)
                if audit is not None:
                    await uow.audit.add(audit(ticket))
                await uow.commit()  # the pushes are stored here too, and delivery is kicked
                filed = ticket
            await assigner.remember()
    except Exception:
        if filed is None:
            raise
        log.exception("ticket #%d of %s is filed, but the work after it failed",
                      filed.number, mask_openid(draft.citizen_openid))
    assert filed is not None  # the commit happened, or we raised above

    log.info("ticket #%d from %s filed at %s, %s", filed.number, mask_openid(draft.citizen_openid),
             filed.station_code, f"assigned to {deputy.code}" if deputy else "queued")
    return Filed(filed, station, deputy)


async def _names(uow: UnitOfWork, ticket: Ticket) -> tuple[Station | None, Deputy | None]:
    station = await uow.stations.get(ticket.station_code)
    return station, await uow.deputies.get(ticket.deputy_code) if ticket.deputy_code else None


async def route(uow: UnitOfWork, draft: ReportDraft) -> str:
    """The station the report goes to (a read: routing does not depend on assignments)."""
    qr_station = draft.qr_station_code
    if not qr_station:
        # the station bound by an earlier QR scan still counts
        citizen = await uow.citizens.get(draft.citizen_openid)
        qr_station = citizen.station_code if citizen else None
    return choose_station(await uow.stations.list(), qr_station_code=qr_station,
                          place=" ".join((draft.place, *draft.place_names)), town=draft.town,
                          category=draft.category)


async def _route(services: Services, draft: ReportDraft) -> str:
    async with services.uow() as uow:
        return await route(uow, draft)


async def file_in(uow: UnitOfWork, services: Services, draft: ReportDraft, now: datetime,
                  station_code: str | None = None) -> tuple[Ticket, Assigner]:
    """Add the draft's ticket at `station_code` (routed here when not given) and give it an on-duty
    deputy, in `uow` (not committed). The caller holds keys.assign_lock of that station and calls
    `assigner.remember()` after its commit."""
    code = station_code or await route(uow, draft)
    assigner = Assigner(uow, services.kv, now)
    deputy = await assigner.pick(code)  # before it is numbered: one INSERT stores it assigned
    ticket = await uow.tickets.add(Ticket.file(
        citizen_openid=draft.citizen_openid, category=draft.category, summary=draft.summary,
        place=draft.place, details=draft.details, station_code=code, at=now, phone=draft.phone,
        share_contact=draft.share_contact, attachments=draft.attachments, filed_by=draft.filed_by,
        reception_id=draft.reception_id, deputy_code=deputy.code if deputy else None,
    ))
    ticket.announce()
    return ticket, assigner


async def file_form(services: Services, draft: ReportDraft, started_at: str) -> Filed:
    """The ticket of a citizen's report form: the one already filed from this very form (same
    citizen, same answers, filed after the form started), so that a form left behind after its
    submit is not filed again; else a new one (submit_report). The look for it and the routing
    read in one unit of work."""
    async with services.uow() as uow:
        filed = await _filed_from_form(uow, draft, started_at)
        if filed is not None:
            return Filed(filed, *await _names(uow, filed))
        code = await route(uow, draft)
    return await _file(services, draft, station_code=code)


async def _filed_from_form(uow: UnitOfWork, draft: ReportDraft, started_at: str) -> Ticket | None:
    try:
        since = datetime.fromisoformat(started_at)
    except (TypeError, ValueError):
        return None
    for ticket in await uow.tickets.list_for_citizen(draft.citizen_openid):
        if ticket.created_at >= since and (ticket.summary, ticket.place, ticket.details, ticket.category) == (
            draft.summary, draft.place, draft.details, draft.category
        ):
            return ticket
    return None
