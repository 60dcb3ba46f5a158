"""The console's ticket pages: the queue, one ticket with its action forms (internal note, assign
or reassign, a message to the citizen, close as a duplicate), and 登记来访诉求 (a report for a
walk-in or phone visitor). Every action is a use case of handlers/staff_actions.py, so it goes
through the chat's events and pushes; the forms post the ticket's revision, and a ticket changed
meanwhile is "reload", never a lost update. Registered by web.py (`add_ticket_routes`)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp_session import get_session

from bot.console.common import (
    BadParam,
    TimelineItem,
    actor_label,
    add_internal_note,
    contact_of,
    export_response,
    filter_context,
    query_or_error,
    visible_stations,
)
from bot.console.web import _account, _deps, _not_found, _page, _redirect, _staff_names
from bot.core.ports import ConcurrentUpdate
from bot.core.staff import ActionRefused, NotInScope, StaffRole
from bot.core.tickets import Ticket
from handlers import staff_actions
from handlers.services import Services
from storage.console_queries import TABS, TicketQuery

FLASH = "flash"  # the session's one-shot success line, shown by the next page


def add_ticket_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/tickets", tickets, name="tickets")
    r.add_get("/tickets/{number}", ticket_page, name="ticket")
    r.add_post("/tickets/{number}/notes", ticket_note, name="ticket_note")
    r.add_post("/tickets/{number}/assign", ticket_assign, name="ticket_assign")
    r.add_post("/tickets/{number}/message", ticket_message, name="ticket_message")
    r.add_post("/tickets/{number}/duplicate", ticket_duplicate, name="ticket_duplicate")
    r.add_route("*", "/visitor", visitor, name="visitor")


def _services(request: web.Request) -> Services:
    services = _deps(request).services
    assert services is not None, "the console's actions need the use cases' Services"
    return services


def refusal_text(texts: Any, error: ActionRefused) -> str:
    """The refusal with the field it is about: "地点：这一项不能空着。"."""
    text = texts.get(error.key, **error.params)
    return f"{texts.get(f'console_param_{error.field}')}：{text}" if error.field else text


async def _flash(request: web.Request, text: str) -> None:
    (await get_session(request))[FLASH] = text


# --- the queue -----------------------------------------------------------------------------------------
async def tickets(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    query, error, stations_list = await query_or_error(request)
    now = deps.clock.now()
    if query is None:
        return _page(request, "tickets.html", status=400, error=error, page=None, tab_counts={},
                     **filter_context(stations_list))
    fmt = request.query.get("export", "")
    if fmt in ("xlsx", "csv"):
        page = await deps.queries.tickets(query, now, export=True)
        t = deps.texts.get
        headers = [t(f"console_col_{c}") for c in ("number", "created", "town", "station", "category", "summary",
                                                   "place", "status", "deputy", "rating")]
        rows = [[i.number, i.created_at, i.town, i.station_name or i.station_code, i.category, i.summary, i.place,
                 t(f"deputy_status_{i.status}"), i.deputy_name, i.rating] for i in page.items]
        return export_response(fmt, t("console_export_tickets"), headers, rows)
    page = await deps.queries.tickets(query, now)
    tab_counts = {tab: await deps.queries.count(TicketQuery(tab=tab, station_codes=query.station_codes), now)
                  for tab in TABS[:-1]}
    return _page(request, "tickets.html", page=page, tab=query.tab, tab_counts=tab_counts,
                 late_hours=deps.queries.late_hours, **filter_context(stations_list))


# --- one ticket ------------------------------------------------------------------------------------------
async def ticket_page(request: web.Request, error: str = "", status: int = 400,
                      typed: Mapping[str, str] | None = None, field: str = "") -> web.StreamResponse:
    """The ticket; with `error`, the page again after a refused form (what was typed kept)."""
    deps = _deps(request)
    account = _account(request)
    async with deps.uow_factory() as uow:
        try:
            ticket = await staff_actions.ticket_in_scope(uow, account, _number(request))
        except NotInScope:
            return _not_found(request)
        station = await uow.stations.get(ticket.station_code)
        everyone = await uow.deputies.list()
        notes = await uow.notes.for_ticket(ticket.number)
        staff_names = await _staff_names(uow)
        stations_by_code = {s.code: s for s in await visible_stations(uow, account.scope)}
    deputies_by_code = {d.code: d for d in everyone}
    t = deps.texts

    def who(actor: str) -> str:
        return staff_names.get(actor) or actor_label(t, actor, deputies_by_code)

    def item(e: Any) -> TimelineItem:
        if e.kind == "filed":  # its text is the station's code: say its name, and who took it down
            kind = "visitor_filed" if ticket.from_visitor else "filed"
            return TimelineItem(e.at, kind, who(e.actor), station.name if station and e.text == station.code else "")
        if e.kind == "transferred" and e.text in deputies_by_code:
            return TimelineItem(e.at, e.kind, who(e.actor), deputies_by_code[e.text].name)
        return TimelineItem(e.at, e.kind, who(e.actor), e.text)

    timeline = [item(e) for e in ticket.timeline]
    timeline += [TimelineItem(n.at, "note", staff_names.get(n.author, n.author), n.text) for n in notes]
    timeline.sort(key=lambda item: item.at)
    own = [d for d in everyone if d.station_code == ticket.station_code]
    others = [] if account.role is not StaffRole.DISTRICT else [
        (stations_by_code[code].name, [d for d in everyone if d.station_code == code])
        for code in sorted(stations_by_code) if code != ticket.station_code
        and any(d.station_code == code for d in everyone)]
    notice = "" if error else (await get_session(request)).pop(FLASH, "")
    return _page(request, "ticket.html", status=status if error else 200, ticket=ticket, station=station,
                 deputy=deputies_by_code.get(ticket.deputy_code or ""), contact=contact_of(ticket), timeline=timeline,
                 error=error, field=field, notice=notice, typed=typed or {}, own_deputies=own, other_deputies=others,
                 stale=status == 409,
                 photos=[a for a in ticket.attachments if a.kind == "image"],
                 voices=[a for a in ticket.attachments if a.kind == "voice"],
                 locations=[a for a in ticket.attachments if a.kind == "location"])


def _number(request: web.Request) -> int:
    number = staff_actions.parse_id(request.match_info["number"])
    if number is None:
        raise web.HTTPNotFound()
    return number


def _revision(form: Mapping[str, Any]) -> int | None:
    value = str(form.get("revision", "")).strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else None


async def ticket_note(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    text = str((await request.post()).get("text", ""))
    try:
        note = await add_internal_note(deps, _account(request), request.match_info["number"], text)
    except BadParam as error:
        return await ticket_page(request, error=deps.texts.get(error.key), typed={"note": text})
    if note is None:
        return _not_found(request)
    raise _redirect(f"/tickets/{note.ticket_number}#timeline")


Action = Callable[[Services, Any, int, str, int | None], Awaitable[Ticket]]


async def _act(request: web.Request, field: str, action: Action,
               done: Callable[[Ticket], Awaitable[str]]) -> web.StreamResponse:
    """Run one action from its form: done → back to the ticket with a success line; refused →
    the page again with the reason and what was typed; stale → "reload"; out of scope → 404."""
    texts = _deps(request).texts
    form = await request.post()
    value = str(form.get(field, ""))
    try:
        ticket = await action(_services(request), _account(request), _number(request), value, _revision(form))
    except NotInScope:
        return _not_found(request)
    except ActionRefused as error:
        return await ticket_page(request, error=refusal_text(texts, error), typed={field: value}, field=error.field)
    except ConcurrentUpdate:
        return await ticket_page(request, error=texts.get("action_stale"), status=409, typed={field: value})
    await _flash(request, await done(ticket))
    raise _redirect(f"/tickets/{ticket.number}")


async def ticket_assign(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)

    async def done(ticket: Ticket) -> str:
        async with deps.uow_factory() as uow:
            deputy = await uow.deputies.get(ticket.deputy_code or "")
        told = await staff_actions.told(_services(request), ticket, deputy=True, citizen=True)
        return deps.texts.get("console_done_assigned", name=deputy.name if deputy else ticket.deputy_code, told=told)

    return await _act(request, "deputy_code", staff_actions.assign, done)


async def ticket_message(request: web.Request) -> web.StreamResponse:
    texts = _deps(request).texts

    async def done(ticket: Ticket) -> str:
        told = await staff_actions.told(_services(request), ticket, citizen=True)
        return texts.get("console_done_message", told=told)

    return await _act(request, "text", staff_actions.message_citizen, done)


async def ticket_duplicate(request: web.Request) -> web.StreamResponse:
    texts = _deps(request).texts

    async def done(ticket: Ticket) -> str:
        told = await staff_actions.told(_services(request), ticket, citizen=True)
        return texts.get("console_done_duplicate", number=ticket.timeline[-1].text, told=told)

    return await _act(request, "original", staff_actions.close_as_duplicate, done)


# --- 登记来访诉求 ---------------------------------------------------------------------------------------------
VISITOR_FIELDS = ("summary", "details", "place", "category", "phone", "station", "reception_id")


async def visitor(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    account = _account(request)
    async with deps.uow_factory() as uow:
        stations_list = await visible_stations(uow, account.scope)
    if request.method != "POST":
        typed = {"reception_id": request.query.get("reception", ""), "station": request.query.get("station", "")}
        return _page(request, "visitor.html", stations=stations_list, typed=typed)
    form = await request.post()
    typed = {name: str(form.get(name, "")) for name in VISITOR_FIELDS}
    consent = form.get("phone_consent") == "yes"
    reception = typed["reception_id"].strip()
    try:
        if reception and staff_actions.parse_id(reception) is None:
            raise ActionRefused("action_reception_unknown", "reception_id")
        ticket = await staff_actions.file_for_visitor(
            _services(request), account, summary=typed["summary"], details=typed["details"], place=typed["place"],
            category=typed["category"], phone=typed["phone"], phone_consent=consent, station_code=typed["station"],
            reception_id=int(reception) if reception else None)
    except ActionRefused as error:
        return _page(request, "visitor.html", status=400, stations=stations_list, typed=typed, consent=consent,
                     error=refusal_text(deps.texts, error), field=error.field)
    told = (await staff_actions.told(_services(request), ticket, deputy=True) if ticket.deputy_code
            else deps.texts.get("console_done_visitor_queued"))
    await _flash(request, deps.texts.get("console_done_visitor", number=ticket.number, told=told))
    raise _redirect(f"/tickets/{ticket.number}")
