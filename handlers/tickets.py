"""Filing a report: route it, create the ticket, assign an on-duty deputy, record the pushes.

Assignment policy (shared with handlers/queue.py): deputies on duty at the ticket's station now,
fewest open tickets, round robin on ties; the last deputy picked per station is kept in the
key-value store under `rr:<station>`.

Nobody on duty: the ticket stays `filed` in the station queue (handlers/queue.py assigns it when
a shift starts). The station's "staff" who hear about it are the deputies registered at that
station (Deputy.station_code) who have bound WeChat: in this first loop they are the only people
of a station the bot can reach. Tickets in the district queue have no station staff and wait
for the district's own roster (shifts at station code `district`), if one is imported.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm.exc import StaleDataError

from bot.domain import DISTRICT_QUEUE, Deputy, Station, Ticket, TicketEvent, mask_openid
from bot.ports import KeyValueStore, UnitOfWork
from bot.texts import Texts
from handlers import notify
from handlers.roster import on_duty
from handlers.routing import choose_deputy, choose_station
from handlers.services import ReportDraft, Services

log = logging.getLogger(__name__)

T = TypeVar("T")

# One assignment at a time across workers, so "fewest open tickets" counts every ticket just
# assigned by someone else and round robin state is read and written in order.
ASSIGN_LOCK = "lock:assign"


def rr_key(station_code: str) -> str:
    return f"rr:{station_code}"


def station_label(texts: Texts, station: Station | None, code: str) -> str:
    if station is not None:
        return station.name
    return texts.get("notify_district_name") if code == DISTRICT_QUEUE else code


async def on_duty_deputies(uow: UnitOfWork, station_code: str, now: datetime) -> list[Deputy]:
    """Deputies on duty at the station now who exist in the register (a roster row may name a
    deputy that was never imported: skip it rather than assign a ticket to nobody)."""
    codes = on_duty(await uow.duty.list(station_code), station_code, now)
    found = [await uow.deputies.get(code) for code in codes]
    return [d for d in found if d is not None]


async def pick_deputy(
    uow: UnitOfWork, kv: KeyValueStore, station_code: str, now: datetime
) -> Deputy | None:
    deputies = await on_duty_deputies(uow, station_code, now)
    if not deputies:
        return None
    codes = [d.code for d in deputies]
    counts = await uow.tickets.open_counts(codes)
    chosen = choose_deputy(codes, counts, await kv.get(rr_key(station_code)))
    return next((d for d in deputies if d.code == chosen), None)


async def _staff_of(uow: UnitOfWork, station_code: str) -> Sequence[Deputy]:
    if station_code == DISTRICT_QUEUE:
        return []
    return [d for d in await uow.deputies.list(station_code) if d.openid]


async def remember_last_assigned(kv: KeyValueStore, station_code: str, deputy_code: str) -> None:
    """Round robin state, written after the assignment was committed: losing it only makes the
    next tie go to the first code again, so a failure is logged, never raised."""
    try:
        await kv.set(rr_key(station_code), deputy_code)
    except Exception:  # noqa: BLE001 - the ticket is already assigned and stored
        log.exception("could not record the last assignment at %s", station_code)


async def retry_on_conflict(operation: Callable[[], Awaitable[T]], what: str) -> T:
    """Run `operation`, which opens and commits its own unit of work; when its ticket save failed
    because someone changed the same ticket at the same time (the version check, StaleDataError),
    run it once more, on fresh data. A second conflict is raised."""
    try:
        return await operation()
    except StaleDataError:
        log.warning("concurrent change while %s; trying once more", what)
    return await operation()


async def submit_report(services: Services, draft: ReportDraft) -> Ticket:
    """File the report as a new ticket (all in one unit of work) and return it.

    Once the unit of work is committed the ticket exists: nothing after that (round robin state,
    releasing the lock, kicking delivery) may make this raise, or the citizen would be told the
    report failed and send 是 again, filing it twice. Such failures are logged."""
    texts = services.texts
    now = services.clock.now()
    filed: Ticket | None = None
    deputy: Deputy | None = None
    code = ""
    try:
        async with services.kv.lock(ASSIGN_LOCK):
            async with services.uow() as uow:
                stations = await uow.stations.list()
                qr_station = draft.qr_station_code
                if not qr_station:
                    # the station bound by an earlier QR scan still counts
                    citizen = await uow.citizens.get(draft.citizen_openid)
                    qr_station = citizen.station_code if citizen else None
                code = choose_station(
                    stations, qr_station_code=qr_station, place=draft.place, town=draft.town, category=draft.category
                )
                station = next((s for s in stations if s.code == code), None)
                label = station_label(texts, station, code)

                ticket = await uow.tickets.add(
                    Ticket(
                        number=0,  # the repository numbers it
                        citizen_openid=draft.citizen_openid,
                        category=draft.category,
                        summary=draft.summary,
                        place=draft.place,
                        details=draft.details,
                        station_code=code,
                        created_at=now,
                        phone=draft.phone,
                        share_contact=draft.share_contact,
                        attachments=list(draft.attachments),
                        events=[TicketEvent(now, "filed", "citizen", code)],
                    )
                )

                deputy = await pick_deputy(uow, services.kv, code, now)
                if deputy is not None:
                    ticket.assign(deputy.code, now)
                    await uow.tickets.save(ticket)
                    messages = [notify.citizen_filed(texts, ticket, label, deputy, now),
                                notify.deputy_assignment(texts, ticket, deputy, now)]
                    if not deputy.openid:
                        log.warning("ticket #%d assigned to %s who has not bound WeChat", ticket.number, deputy.code)
                else:
                    messages = [notify.citizen_filed(texts, ticket, label, None, now)]
                    messages += [notify.staff_queue_notice(texts, ticket, label, s, now)
                                 for s in await _staff_of(uow, code)]
                for message in messages:
                    if message is not None:
                        await uow.outbox.add(message)
                await uow.commit()
                filed = ticket
            if deputy is not None:
                await remember_last_assigned(services.kv, code, deputy.code)
    except Exception:
        if filed is None:
            raise
        log.exception("ticket #%d of %s is filed, but the work after it failed",
                      filed.number, mask_openid(draft.citizen_openid))
    assert filed is not None  # the commit happened, or we raised above

    log.info(
        "ticket #%d from %s filed at %s, %s",
        filed.number,
        mask_openid(draft.citizen_openid),
        code,
        f"assigned to {deputy.code}" if deputy else "queued",
    )
    try:
        services.kick_delivery()
    except Exception:  # noqa: BLE001 - the scheduled drain delivers it anyway
        log.exception("could not start delivery for ticket #%d", filed.number)
    return filed


async def filed_from_form(services: Services, draft: ReportDraft, started_at: str) -> Ticket | None:
    """The ticket already filed from this very form (same citizen, same answers, filed after the
    form started), if any: a form left behind after its submit is then not filed again."""
    try:
        since = datetime.fromisoformat(started_at)
    except (TypeError, ValueError):
        return None
    async with services.uow() as uow:
        for ticket in await uow.tickets.list_for_citizen(draft.citizen_openid):
            if ticket.created_at >= since and (ticket.summary, ticket.place, ticket.details, ticket.category) == (
                draft.summary, draft.place, draft.details, draft.category
            ):
                return ticket
    return None
