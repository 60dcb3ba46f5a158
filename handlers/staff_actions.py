"""What staff do to tickets in the console and the API: assign or reassign to a deputy, write to
the citizen from the station, close as a duplicate, file a report for a walk-in or phone visitor.

Each goes through the Ticket's own methods and the bus unit of work, so the pushes are the chat's
(handlers/notify.py, handlers/staff_pushes.py), and writes its audit entry in the same transaction.
A ticket outside the account's scope is NotInScope, exactly like a missing one. `revision` is what
the form showed (Ticket.revision): a ticket changed since is ConcurrentUpdate, "reload"."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.core.errors import DomainError
from bot.core.ports import ConcurrentUpdate, UnitOfWork
from bot.core.staff import ActionRefused, AuditEntry, NotInScope, StaffAccount, StaffRole
from bot.core.tickets import CATEGORIES, VISITOR, Ticket, TicketStatus
from dialogues.report_form import normalize_phone
from handlers import channels
from handlers.notify import ASSIGNMENT, RELAY_MAX_BYTES, RELAY_MAX_CHARS, STATUS
from handlers.routing import choose_station, town_of
from handlers.services import ReportDraft, Services, retry_on_conflict
from handlers.tickets import submit_report

SUMMARY_MAX = 60  # as the chat's report form: one line
MAX_ID = 2**31 - 1  # ticket and reception ids are 32-bit integers in the database
TEXT_MAX = 2000


def parse_id(text: str) -> int | None:
    """A ticket number or id as typed or posted: ASCII digits only ("¹".isdigit() is true, yet
    int("¹") fails), within a database integer; else None."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


async def ticket_in_scope(uow: UnitOfWork, staff: StaffAccount, number: int) -> Ticket:
    ticket = await uow.tickets.get(number) if 0 < number <= MAX_ID else None
    if ticket is None or not staff.scope.sees_station(await uow.stations.get(ticket.station_code)):
        raise NotInScope(number)
    return ticket


async def told(services: Services, ticket: Ticket, *, deputy: bool = False, citizen: bool = False) -> str:
    """What staff may be told of the pushes their action caused, as it really is: sent, comes when
    the person next opens the account, or cannot reach them (the ticket's deputy; its citizen)."""
    texts = services.texts
    lines = []
    if deputy and ticket.deputy_code:
        async with services.uow() as uow:
            found = await uow.deputies.get(ticket.deputy_code)
        name = found.name if found else ticket.deputy_code
        lines.append(await channels.reach_text(services, found.openid or "" if found else "", ASSIGNMENT,
                                               texts.get("reach_who_named", name=name)))
    if citizen and not ticket.from_visitor:
        lines.append(await channels.reach_text(services, ticket.citizen_openid, STATUS,
                                               texts.get("reach_who_citizen")))
    return "".join(lines)


def _check_revision(ticket: Ticket, revision: int | None) -> None:
    if revision is not None and revision != ticket.revision:
        raise ConcurrentUpdate(f"ticket #{ticket.number} changed since the form was shown")


Change = Callable[[UnitOfWork, Ticket, datetime], Awaitable[tuple[str, str]]]


async def _act(services: Services, staff: StaffAccount, number: int, revision: int | None, action: str,
               field: str, change: Change) -> Ticket:
    """Load the ticket in scope, check the form's revision, `change` it (returns the audit's
    before and after), save, audit and commit in one unit of work. A conflict at commit runs it
    once more; with a posted revision that fresh read then refuses."""
    async def run() -> Ticket:
        async with services.uow() as uow:
            ticket = await ticket_in_scope(uow, staff, number)
            _check_revision(ticket, revision)
            now = services.clock.now()
            try:
                before, after = await change(uow, ticket, now)
            except DomainError as error:
                raise ActionRefused(error.key, field, **error.params) from None
            await uow.tickets.save(ticket)
            await uow.audit.add(AuditEntry(now, staff.username, action, f"ticket:{ticket.number}",
                                           before=before, after=after))
            await uow.commit()
        return ticket

    return await retry_on_conflict(run, f"{action} #{number}")


def _relayable(text: str, field: str) -> str:
    text = text.strip()
    if not text:
        raise ActionRefused("action_text_empty", field)
    if len(text.encode("utf-8")) > RELAY_MAX_BYTES:
        raise ActionRefused("action_text_long", field, count=len(text), limit=RELAY_MAX_CHARS)
    return text


# --- assign / reassign ---------------------------------------------------------------------------
async def assign(services: Services, staff: StaffAccount, number: int, deputy_code: str,
                 revision: int | None = None) -> Ticket:
    """To a deputy of the ticket's station (district staff: any deputy, and the ticket moves to
    that deputy's station). The citizen and the new deputy are told (TicketAssigned), and so is
    a deputy it was taken from."""
    deputy_code = deputy_code.strip()
    if not deputy_code:
        raise ActionRefused("action_deputy_missing", "deputy_code")

    async def change(uow: UnitOfWork, ticket: Ticket, now: datetime) -> tuple[str, str]:
        deputy = await uow.deputies.get(deputy_code)
        if deputy is None:
            raise ActionRefused("action_deputy_unknown", "deputy_code", code=deputy_code)
        if deputy.station_code != ticket.station_code and staff.role is not StaffRole.DISTRICT:
            raise ActionRefused("action_deputy_other_station", "deputy_code", name=deputy.name)
        before = f"{ticket.station_code} {ticket.deputy_code or '-'}"
        ticket.assign(deputy.code, now, station_code=deputy.station_code)
        return before, f"{ticket.station_code} {deputy.code}"

    return await _act(services, staff, number, revision, "ticket_assigned", "deputy_code", change)


# --- a message to the citizen from the station ------------------------------------------------------
async def message_citizen(services: Services, staff: StaffAccount, number: int, text: str,
                          revision: int | None = None) -> Ticket:
    """On the citizen's timeline and pushed to them (StationMessaged)."""
    text = _relayable(text, "text")

    async def change(uow: UnitOfWork, ticket: Ticket, now: datetime) -> tuple[str, str]:
        ticket.message_citizen(staff.username, text, now)
        return "", text

    return await _act(services, staff, number, revision, "station_message", "text", change)


# --- close as a duplicate -------------------------------------------------------------------------------
def _number(text: str | int, field: str) -> int:
    value = str(text).strip().lstrip("#＃")
    if not (value.isascii() and value.isdigit()):
        raise ActionRefused("action_number_bad", field)
    return parse_id(value) or 0  # 0 or too big: no such ticket


async def close_as_duplicate(services: Services, staff: StaffAccount, number: int, original: str | int,
                             revision: int | None = None) -> Ticket:
    """Closed as the same matter as `original` (also in scope); the citizen is told which number."""
    original_number = _number(original, "original")

    async def change(uow: UnitOfWork, ticket: Ticket, now: datetime) -> tuple[str, str]:
        try:
            first = await ticket_in_scope(uow, staff, original_number)
        except NotInScope:
            raise ActionRefused("action_original_missing", "original", number=original_number) from None
        if first.status is TicketStatus.CLOSED:  # point at the ticket it was merged into
            raise ActionRefused("action_original_closed", "original", number=first.number)
        before = str(ticket.status)
        ticket.close_as_duplicate(first.number, staff.username, now)
        return before, f"#{first.number}"

    return await _act(services, staff, number, revision, "ticket_duplicate", "original", change)


# --- a report for a walk-in or phone visitor ------------------------------------------------------------
def _required(value: str, field: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise ActionRefused("action_field_empty", field)
    if len(value) > limit:
        raise ActionRefused("action_field_long", field, limit=limit)
    return value


async def _visitor_station(uow: UnitOfWork, staff: StaffAccount, station_code: str, reception_id: int | None,
                           place: str, category: str) -> str:
    """The station asked for (in scope), the reception's, the station account's own; else routed
    like a chat report, which must land in the account's scope."""
    if reception_id is not None:
        reception = await uow.receptions.get(reception_id) if 0 < reception_id <= MAX_ID else None
        if reception is None or not staff.scope.sees_station(await uow.stations.get(reception.station_code)):
            raise ActionRefused("action_reception_unknown", "reception_id")
        station_code = station_code or reception.station_code
    if not station_code and staff.role is StaffRole.STATION:
        station_code = staff.station
    if station_code:
        if not staff.scope.sees_station(await uow.stations.get(station_code)):
            raise ActionRefused("action_station_unknown", "station")
        return station_code
    stations = await uow.stations.list()
    # the town the place names, else the account's own
    town = town_of(stations, place) or staff.town
    code = choose_station(stations, qr_station_code=None, place=place, town=town, category=category)
    routed = next((s for s in stations if s.code == code), None)
    if staff.role is not StaffRole.DISTRICT and not staff.scope.sees_station(routed):
        raise ActionRefused("action_station_choose", "station")
    return code


def check_visitor_report(summary: str, details: str, place: str, category: str,
                         phone: str = "") -> tuple[str, str, str, str, str]:
    """A visitor's report as it will be filed (summary, details, place, category, phone), checked
    before anything is stored (a whole list can be checked first). Raises ActionRefused."""
    summary = _required(" ".join(summary.split()), "summary", SUMMARY_MAX)
    place = _required(place, "place", 200)
    details = details.strip()
    if len(details) > TEXT_MAX:
        raise ActionRefused("action_field_long", "details", limit=TEXT_MAX)
    category = category.strip() or "其他"
    if category not in CATEGORIES:
        raise ActionRefused("action_category_unknown", "category")
    number = ""
    if phone.strip():
        number = normalize_phone(phone) or ""
        if not number:
            raise ActionRefused("action_phone_bad", "phone")
    return summary, details, place, category, number


async def file_for_visitor(services: Services, staff: StaffAccount, *, summary: str, details: str, place: str,
                           category: str, phone: str = "", phone_consent: bool = False, station_code: str = "",
                           reception_id: int | None = None) -> Ticket:
    """A report taken down by staff for someone who came in or phoned (they may have no WeChat):
    filed and assigned exactly like a chat report (handlers.tickets.submit_report), under the
    station asked for, else routed from the place. The phone is kept; the deputy sees it only
    with the visitor's consent. Raises ActionRefused naming the field at fault."""
    summary, details, place, category, number = check_visitor_report(summary, details, place, category, phone)
    async with services.uow() as uow:
        code = await _visitor_station(uow, staff, station_code.strip(), reception_id, place, category)
    draft = ReportDraft(citizen_openid=VISITOR, category=category, summary=summary, place=place, details=details,
                        qr_station_code=code, phone=number or None, share_contact=bool(number) and phone_consent,
                        filed_by=staff.username, reception_id=reception_id)

    def audit(ticket: Ticket) -> AuditEntry:
        consent = "phone_shared" if draft.share_contact else ("phone_kept" if number else "no_phone")
        return AuditEntry(services.clock.now(), staff.username, "visitor_filed", f"ticket:{ticket.number}",
                          after=f"{ticket.station_code} {ticket.category} {ticket.summary} ({consent})")

    return await submit_report(services, draft, audit=audit)
