"""What the console pages and the API share: their dependencies, scope checks, the ticket filters
read from a query string, ticket views, and XLSX/CSV export."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.core.staff import AuditEntry, Scope, StaffAccount, TicketNote
from bot.core.people import Deputy, Station
from bot.core.tickets import CATEGORIES, Ticket, TicketStatus
from bot.core.clock import Clock
from bot.core.ports import UnitOfWork, UnitOfWorkFactory
from bot.settings import Settings
from bot.texts import Texts
from handlers.services import Services
from storage.console_queries import TABS, ConsoleQueries, TicketQuery, station_scope_filter

MAX_PAGE = 10_000


@dataclass
class ConsoleDeps:
    uow_factory: UnitOfWorkFactory
    queries: ConsoleQueries
    clock: Clock
    texts: Texts
    settings: Settings
    services: Services | None = None  # the use cases of the actions and the administration (same bus as the chat)
    send_broadcast: Callable[[int], None] | None = None  # starts (in the background) a broadcast's mass sends


DEPS = web.AppKey("console_deps", ConsoleDeps)
ACCOUNT = web.RequestKey("console_account", StaffAccount)  # the signed-in account (or the token's)


class BadParam(ValueError):
    """A query parameter that cannot be read; `name` is the parameter, the text says what is wanted."""

    def __init__(self, name: str, key: str) -> None:
        super().__init__(name, key)
        self.name = name
        self.key = key


def _date(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise BadParam(name, "console_bad_date") from None


def _int(params: Mapping[str, str], name: str, low: int, high: int, default: int | None) -> int | None:
    value = params.get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise BadParam(name, "console_bad_number")
    return int(value)


def parse_ticket_query(params: Mapping[str, str], scope: Scope, stations: Sequence[Station],
                       per_page: int = 20) -> TicketQuery:
    tab = params.get("tab", "all") or "all"
    if tab not in TABS:
        raise BadParam("tab", "console_bad_choice")
    status = params.get("status", "").strip()
    if status and status not in {s.value for s in TicketStatus}:
        raise BadParam("status", "console_bad_choice")
    category = params.get("category", "").strip()
    if category and category not in CATEGORIES:
        raise BadParam("category", "console_bad_choice")
    town = params.get("town", "").strip()
    since, until = _date(params, "since"), _date(params, "until")
    if since and until and since > until:
        raise BadParam("until", "console_bad_range")
    codes = station_scope_filter(scope.station_codes(stations),
                                 [s.code for s in stations if s.town == town] if town else None,
                                 params.get("station", "").strip())
    return TicketQuery(
        tab=tab, station_codes=codes, category=category, status=status, since=since, until=until,
        rating=_int(params, "rating", 0, 5, None), deputy=params.get("deputy", "").strip(),
        q=params.get("q", "").strip()[:100], page=_int(params, "page", 1, MAX_PAGE, 1) or 1,
        per_page=_int(params, "per_page", 1, 100, per_page) or per_page,
    )


async def visible_stations(uow: UnitOfWork, scope: Scope) -> list[Station]:
    return [s for s in await uow.stations.list() if scope.sees_station(s)]


async def query_or_error(request: web.Request, per_page: int = 20) -> tuple[TicketQuery | None, str, list[Station]]:
    """A page's ticket filters (or the Chinese reason they cannot be read) and the visible stations."""
    deps, scope = request.app[DEPS], request[ACCOUNT].scope
    async with deps.uow_factory() as uow:
        stations_list = await visible_stations(uow, scope)
    try:
        return parse_ticket_query(request.query, scope, stations_list, per_page), "", stations_list
    except BadParam as error:
        return None, deps.texts.get(error.key, name=deps.texts.get(f"console_param_{error.name}")), stations_list


def filter_context(stations_list: Sequence[Station]) -> dict[str, Any]:
    return {"towns": sorted({s.town for s in stations_list}), "stations": stations_list}


async def ticket_in_scope(uow: UnitOfWork, scope: Scope, number_text: str) -> Ticket | None:
    """The ticket, or None when it does not exist or lies outside the scope (callers answer 404
    for both, the same way)."""
    if not (number_text.isascii() and number_text.isdigit()) or len(number_text) > 12:
        return None
    ticket = await uow.tickets.get(int(number_text))
    if ticket is None:
        return None
    station = await uow.stations.get(ticket.station_code)
    return ticket if scope.sees_station(station) else None


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # an event kind, or "note"
    who: str
    text: str


def actor_label(texts: Texts, actor: str, deputies: Mapping[str, Deputy]) -> str:
    if actor in deputies:
        return texts.get("console_actor_deputy", name=deputies[actor].name)
    if actor in ("citizen", "system", ""):
        return texts.get(f"console_actor_{actor or 'system'}")
    return actor  # a staff username


def contact_of(ticket: Ticket) -> str:
    """The citizen's phone, only where they agreed to share it."""
    return ticket.phone or "" if ticket.share_contact else ""


# --- export ----------------------------------------------------------------------------------------
def export_response(fmt: str, filename: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> web.Response:
    """An XLSX or CSV download of a list, with a Chinese file name."""
    def cell(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        return "" if value is None else value

    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerows([[cell(v) for v in row] for row in rows])
        body = ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM lets Excel read the Chinese
        content_type, suffix = "text/csv", "csv"
    else:
        from openpyxl import Workbook
        from openpyxl.styles import Font

        book = Workbook()
        sheet = book.active
        sheet.append(list(headers))
        for c in sheet[1]:
            c.font = Font(bold=True)
        for row in rows:
            sheet.append([cell(v) for v in row])
        for column in sheet.columns:
            width = max(len(str(c.value or "")) for c in column)
            sheet.column_dimensions[column[0].column_letter].width = min(60, 4 + width * 2)
        buffer = io.BytesIO()
        book.save(buffer)
        body = buffer.getvalue()
        content_type, suffix = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"
    name = f"{filename}.{suffix}"
    return web.Response(body=body, content_type=content_type, headers={
        "Content-Disposition": f"attachment; filename=export.{suffix}; filename*=UTF-8''{quote(name)}"})


# --- the one action of phase 1 ---------------------------------------------------------------------
NOTE_MAX = 1000


async def add_internal_note(deps: ConsoleDeps, account: StaffAccount, number_text: str, text: str) -> TicketNote | None:
    """An internal note on a ticket in the account's scope (None: no such ticket for this account).
    Never sent to the citizen; written to the audit log in the same transaction."""
    text = text.strip()
    if not text:
        raise BadParam("text", "console_note_empty")
    if len(text) > NOTE_MAX:
        raise BadParam("text", "console_note_long")
    async with deps.uow_factory() as uow:
        ticket = await ticket_in_scope(uow, account.scope, number_text)
        if ticket is None:
            return None
        now = deps.clock.now()
        note = await uow.notes.add(TicketNote(ticket.number, now, account.username, text))
        await uow.audit.add(AuditEntry(now, account.username, "note_added", f"ticket:{ticket.number}", after=text))
        await uow.commit()
    return note
