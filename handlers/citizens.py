"""Small citizen use cases that touch storage: QR binding, my tickets, a ticket's timeline, rating.

Each opens its own unit of work; the conversation calls them under the citizen's lock."""
from __future__ import annotations

import logging
from datetime import datetime

from bot.core import keys
from bot.core.errors import DomainError
from bot.core.people import Citizen, Station
from bot.core.ports import UnitOfWork
from bot.core.privacy import mask_openid
from bot.core.tickets import CITIZEN, SYSTEM, Ticket, TicketBrief, TicketStatus, TimelineKind
from handlers import channels
from handlers.notify import ASSIGNMENT, HEADING_SUMMARY_MAX, relay_refusal, shorten, station_label
from handlers.services import Services, lookup_remembering_misses, retry_on_conflict
from handlers.tickets import Filed

log = logging.getLogger(__name__)

LIST_LIMIT = 10  # a chat bubble, not a report: the newest ten
# WeChat cuts a passive reply at 2048 bytes (~680 Chinese characters): keep timelines short
TIMELINE_ENTRIES_MAX = 8
# the filer's own entries, not shown to those who follow the ticket (handlers/live_followers.py)
FILERS_OWN = frozenset({TimelineKind.CITIZEN_NOTE, TimelineKind.RATED, TimelineKind.STATION_MESSAGE})
ENTRY_TEXT_MAX = 80


def _scene_target(scene: str) -> tuple[str, str] | None:
    """('station', 'S01') for 'station:S01' (a 'qrscene_' prefix is tolerated)."""
    scene = scene.strip().removeprefix("qrscene_")
    kind, _, code = scene.partition(":")
    if kind in ("station", "deputy") and code.strip():
        return kind, code.strip()
    return None


async def _citizen(uow: UnitOfWork, openid: str) -> Citizen:
    return await uow.citizens.get(openid) or Citizen(openid=openid)


async def bind_station_by_scene(services: Services, openid: str, scene: str) -> Station | None:
    """Bind the citizen to the station of a scanned QR code (station:<code> or deputy:<code>).

    Also records the follow. Returns the bound station, or None when the scene names none we know
    (the citizen is still saved, with any earlier binding kept)."""
    target = _scene_target(scene) if scene else None
    async with services.uow() as uow:
        citizen = await _citizen(uow, openid)
        citizen.subscribed = True
        station: Station | None = None
        if target:
            kind, code = target
            station_code = code
            if kind == "deputy":
                deputy = await uow.deputies.get(code)
                station_code = deputy.station_code if deputy else ""
            station = await uow.stations.get(station_code) if station_code else None
            if station:
                citizen.station_code = station.code
                await services.kv.delete(keys.no_station(openid))
            else:
                log.info("unknown QR scene %r from %s", scene, mask_openid(openid))
        await uow.citizens.save(citizen)
        await uow.commit()
    return station


async def mark_unsubscribed(services: Services, openid: str) -> None:
    async with services.uow() as uow:
        citizen = await uow.citizens.get(openid)
        if citizen is None:
            return
        citizen.subscribed = False
        await uow.citizens.save(citizen)
        await uow.commit()


NO_STATION_TTL = 24 * 3600  # seconds


async def bound_station(services: Services, openid: str) -> Station | None:
    """The station bound by the citizen's QR scan (bind_station_by_scene forgets a remembered miss)."""

    async def load() -> Station | None:
        async with services.uow() as uow:
            citizen = await uow.citizens.get(openid)
            return await uow.stations.get(citizen.station_code) if citizen and citizen.station_code else None

    return await lookup_remembering_misses(services.kv, keys.no_station(openid), NO_STATION_TTL, load)


async def filed_text(services: Services, filed: Filed) -> str:
    """The answer to the citizen's 是: where the new ticket went, as it really is (the on-duty
    deputy, or the station queue). It is the only message about the filing (no push repeats it)."""
    ticket, deputy = filed.ticket, filed.deputy
    label = station_label(services.texts, filed.station, ticket.station_code)
    if ticket.deputy_code:
        name = deputy.name if deputy is not None else ticket.deputy_code
        reach = await channels.reach_text(services, deputy.openid if deputy else "", ASSIGNMENT,
                                          services.texts.get("reach_who_named", name=name))
        return services.texts.get("form_submitted_assigned", number=ticket.number, station=label, deputy=name,
                                  reach=reach)
    return services.texts.get("form_submitted_queued", number=ticket.number, station=label)


# --- my tickets ---------------------------------------------------------------------------------
def _status(services: Services, ticket: Ticket | TicketBrief) -> str:
    return str(services.texts.raw("citizen_status").get(str(ticket.status), str(ticket.status)))


async def my_tickets_text(services: Services, openid: str) -> str:
    texts = services.texts
    async with services.uow() as uow:
        tickets = await uow.tickets.briefs_for_citizen(openid)  # with a live question they asked too
    if not tickets:
        return texts.get("citizen_no_tickets")
    lines = [texts.get("citizen_tickets_header", count=len(tickets))]
    for ticket in tickets[:LIST_LIMIT]:
        lines.append(
            texts.get(
                "citizen_ticket_line",
                number=ticket.number,
                summary=shorten(ticket.summary),
                status=_status(services, ticket),
            )
        )
    lines.append(texts.get("citizen_tickets_footer", number=tickets[0].number))
    return "\n".join(lines)


def _when(services: Services, at: datetime) -> str:
    return services.texts.get("citizen_when", month=at.month, day=at.day, time=f"{at:%H:%M}")


async def _follows(uow: UnitOfWork, ticket: Ticket | None, openid: str) -> bool:
    """Whether `openid` follows someone else's ticket: another asker of the merged live question it
    was filed for (handlers/live_followers.py)."""
    return ticket is not None and ticket.citizen_openid != openid and openid in await uow.live.followers(ticket.number)


async def ticket_timeline_text(services: Services, openid: str, number: int) -> str:
    """One ticket's history, only for the citizen who filed it and those who follow it (the other
    askers of a merged live question: they do not see the filer's own entries); others get 'not found'."""
    texts = services.texts
    async with services.uow() as uow:
        ticket = await uow.tickets.get(number)
        follower = await _follows(uow, ticket, openid)
        if ticket is None or (ticket.citizen_openid != openid and not follower):
            return texts.get("citizen_ticket_not_found", number=number)
        codes = {e.actor for e in ticket.timeline}
        codes |= {e.text for e in ticket.timeline if e.kind is TimelineKind.TRANSFERRED}
        names: dict[str, str] = {}
        for code in codes:
            if code and code not in (CITIZEN, SYSTEM):
                deputy = await uow.deputies.get(code)
                if deputy:
                    names[code] = deputy.name
    lines = [
        texts.get(
            "citizen_timeline_header",
            number=ticket.number,
            summary=shorten(ticket.summary, HEADING_SUMMARY_MAX),
            category=ticket.category,
            place=ticket.place,
            status=_status(services, ticket),
        )
    ]
    templates = texts.raw("citizen_event")

    def label(code: str) -> str:
        name = names.get(code)
        return texts.get("citizen_deputy_label", name=name) if name else texts.get("citizen_deputy_fallback")

    shown = [e for e in ticket.timeline if e.kind in templates and not (follower and e.kind in FILERS_OWN)]
    for entry in shown[-TIMELINE_ENTRIES_MAX:]:
        deputy = label(entry.text if entry.kind is TimelineKind.TRANSFERRED else entry.actor)
        what = str(templates[entry.kind]).format(deputy=deputy, text=shorten(entry.text, ENTRY_TEXT_MAX))
        lines.append(texts.get("citizen_timeline_line", when=_when(services, entry.at), what=what))
    if ticket.status is TicketStatus.RESOLVED and ticket.rating is None and not follower:
        lines.append(texts.get("citizen_timeline_rate_hint"))
    return "\n".join(lines)


async def add_citizen_note(services: Services, openid: str, number: int, text: str) -> str:
    """`#1024 <text>` from the citizen: kept on their own open ticket and passed to its deputy."""
    text = text.strip()
    if refusal := relay_refusal(services.texts, number, text):
        return refusal
    now = services.clock.now()

    async def note() -> str:
        return await _add_note(services, openid, number, text, now)

    return await retry_on_conflict(note, f"noting on #{number}")


async def _add_note(services: Services, openid: str, number: int, text: str, now: datetime) -> str:
    texts = services.texts
    async with services.uow() as uow:
        ticket = await uow.tickets.get(number)
        if await _follows(uow, ticket, openid):
            return texts.get("live_follow_no_note", number=number)  # the filer's ticket: they can only follow it
        if ticket is None or ticket.citizen_openid != openid:
            return texts.get("citizen_ticket_not_found", number=number)
        try:
            ticket.add_citizen_note(text, now)
        except DomainError as error:
            return texts.get(error.key, **error.params)
        await uow.tickets.save(ticket)
        deputy = await uow.deputies.get(ticket.deputy_code) if ticket.deputy_code else None
        reach = ""
        if deputy is not None:  # what the reply may say of the push, decided before it can go
            reach = await channels.reach_text(services, deputy.openid, "", texts.get("reach_who_note"), uow=uow)
        await uow.commit()  # CitizenNoted passes the note on to a reachable deputy
    if deputy is None:
        return texts.get("citizen_note_kept", number=number)
    return texts.get("citizen_note_sent", number=number, reach=reach)


# --- rating -------------------------------------------------------------------------------------
async def awaiting_rating(services: Services, openid: str) -> Ticket | None:
    async with services.uow() as uow:
        return await uow.tickets.awaiting_rating(openid)


async def already_rated(services: Services, openid: str) -> Ticket | None:
    """The citizen's newest resolved ticket when it is rated already: a second score is an
    answer to that rating, not a new message for the classifier."""
    async with services.uow() as uow:
        resolved = [t for t in await uow.tickets.list_for_citizen(openid) if t.status is TicketStatus.RESOLVED]
    newest = max(resolved, key=lambda t: t.number, default=None)
    return newest if newest is not None and newest.rating is not None else None


async def rate_ticket(services: Services, openid: str, score: int, comment: str = "") -> str:
    """Rate the citizen's newest resolved unrated ticket; the deputy is told through the outbox."""
    comment = comment.strip()[:500]  # as the citizen wrote it

    async def rate() -> str:
        return await _rate(services, openid, score, comment)

    return await retry_on_conflict(rate, "rating")


async def _rate(services: Services, openid: str, score: int, comment: str) -> str:
    texts = services.texts
    async with services.uow() as uow:
        ticket = await uow.tickets.awaiting_rating(openid)
        if ticket is None:
            return texts.get("citizen_rate_nothing")
        try:
            ticket.rate(score, comment, services.clock.now())
        except DomainError as error:
            return texts.get(error.key, **error.params)
        await uow.tickets.save(ticket)
        await uow.commit()  # TicketRated tells the deputy
    log.info("ticket #%s rated %s by %s", ticket.number, score, mask_openid(openid))
    key = "citizen_rate_thanks_comment" if comment else "citizen_rate_thanks"
    return texts.get(key, score=score)
