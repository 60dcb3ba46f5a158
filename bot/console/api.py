"""The JSON API under /api/v1/ for the district's other systems (12345 hotline, 数字人大).

Bearer tokens from `zhitongche staff token`, scoped like their account: a ticket, station or roster
outside the scope is 404, the same answer as one that does not exist. Ticket fields use Open311
GeoReport v2 names where they fit. The OpenAPI document is bot/console/openapi.py."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.console.auth import token_hash
from bot.console.common import (
    ACCOUNT,
    DEPS,
    BadParam,
    ConsoleDeps,
    add_internal_note,
    contact_of,
    parse_ticket_query,
    ticket_in_scope,
    visible_stations,
)
from bot.console import live_api
from bot.console.openapi import openapi_document
from bot.core.staff import StaffAccount
from bot.core.tickets import Ticket, TicketStatus
from bot.core.clock import LOCAL_TZ
from storage.console_queries import STAT_GROUPS, TicketRowView

MAX_JSON_BYTES = 16 * 1024


def create_api_app(deps: ConsoleDeps) -> web.Application:
    from bot.console.api_actions import add_action_routes  # it uses this module's helpers

    app = web.Application(middlewares=[bearer], client_max_size=MAX_JSON_BYTES)
    app[DEPS] = deps
    r = app.router
    r.add_get("/openapi.json", openapi, name="openapi")
    r.add_get("/tickets", list_tickets)
    r.add_get("/tickets/{number}", get_ticket)
    r.add_post("/tickets/{number}/notes", add_note)
    r.add_get("/stations", list_stations)
    r.add_get("/deputies", list_deputies)
    r.add_get("/duty", duty_now)
    r.add_get("/stats/tickets", ticket_stats)
    add_action_routes(r)  # POST /tickets, POST /tickets/{number}/assign (api_actions.py)
    live_api.add_routes(r)  # 云直播 (bot/console/live_api.py)
    return app


def _deps(request: web.Request) -> ConsoleDeps:
    return request.app[DEPS]


def _account(request: web.Request) -> StaffAccount:
    return request[ACCOUNT]


def error(request: web.Request, status: int, code: str, key: str, **fields: Any) -> web.Response:
    texts = _deps(request).texts
    params = {"name": texts.get(f"console_param_{fields['parameter']}")} if "parameter" in fields else {}
    return web.json_response({"error": code, "message": texts.get(key, **params), **fields}, status=status,
                             dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # Chinese readable in the raw response


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=_dumps)


def _not_found(request: web.Request) -> web.Response:
    return error(request, 404, "not_found", "api_not_found")


@web.middleware
async def bearer(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.match_info.route.name == "openapi":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    account = None
    if scheme.lower() == "bearer" and token.strip():
        async with _deps(request).uow_factory() as uow:
            account = await uow.staff.by_token_hash(token_hash(token.strip()))
    if account is None:
        return error(request, 401, "unauthorized", "api_unauthorized")
    request[ACCOUNT] = account
    try:
        return await handler(request)
    except BadParam as bad:
        return error(request, 400, "bad_parameter", bad.key, parameter=bad.name)
    except web.HTTPNotFound:
        return _not_found(request)
    except web.HTTPMethodNotAllowed:
        return error(request, 405, "method_not_allowed", "api_method_not_allowed")


def iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=LOCAL_TZ).isoformat() if value else None


def _open311_status(status: str) -> str:
    return "open" if TicketStatus(status).is_open else "closed"


def ticket_item(row: TicketRowView) -> dict[str, Any]:
    return {
        "service_request_id": str(row.number),
        "status": _open311_status(row.status),
        "status_detail": row.status,
        "service_code": row.category,
        "service_name": row.category,
        "description": row.summary,
        "address": row.place,
        "requested_datetime": iso(row.created_at),
        "agency_responsible": row.station_name,
        "station_code": row.station_code,
        "town": row.town,
        "deputy_code": row.deputy_code or None,
        "deputy_name": row.deputy_name or None,
        "rating": row.rating,
    }


def ticket_detail(ticket: Ticket, station_name: str, town: str, deputy_name: str, notes: list[Any]) -> dict[str, Any]:
    item = ticket_item(TicketRowView(ticket.number, ticket.created_at, ticket.station_code, station_name, town,
                                     ticket.category, ticket.summary, ticket.place, str(ticket.status),
                                     ticket.deputy_code or "", deputy_name, ticket.rating))
    last = ticket.timeline[-1].at if ticket.timeline else ticket.created_at
    item |= {
        "details": ticket.details,
        "revision": ticket.revision,  # post it back with an action: a ticket changed since is 409
        "updated_datetime": iso(max([last, *(n.at for n in notes)])),
        "phone": contact_of(ticket) or None,
        "media_urls": [a.url for a in ticket.attachments if a.kind == "image" and a.url],
        "voice_text": [a.text for a in ticket.attachments if a.kind == "voice" and a.text],
        "rating_comment": ticket.rating_comment,
        "timeline": [{"at": iso(e.at), "kind": e.kind, "actor": e.actor, "text": e.text} for e in ticket.timeline],
        "notes": [note_item(n) for n in notes],
    }
    return item


def note_item(note: Any) -> dict[str, Any]:
    return {"id": note.id, "service_request_id": str(note.ticket_number), "author": note.author,
            "text": note.text, "created_datetime": iso(note.at)}


# --- handlers --------------------------------------------------------------------------------------
async def openapi(request: web.Request) -> web.Response:
    return _json(openapi_document())


async def _ticket_query(request: web.Request) -> Any:
    async with _deps(request).uow_factory() as uow:
        stations = await visible_stations(uow, _account(request).scope)
    return parse_ticket_query(request.query, _account(request).scope, stations)


async def list_tickets(request: web.Request) -> web.Response:
    deps = _deps(request)
    page = await deps.queries.tickets(await _ticket_query(request), deps.clock.now())
    return _json({"items": [ticket_item(i) for i in page.items], "total": page.total, "page": page.page,
                  "per_page": page.per_page})


async def get_ticket(request: web.Request) -> web.Response:
    async with _deps(request).uow_factory() as uow:
        ticket = await ticket_in_scope(uow, _account(request).scope, request.match_info["number"])
        if ticket is None:
            return _not_found(request)
        station = await uow.stations.get(ticket.station_code)
        deputy = await uow.deputies.get(ticket.deputy_code) if ticket.deputy_code else None
        notes = list(await uow.notes.for_ticket(ticket.number))
    return _json(ticket_detail(ticket, station.name if station else "", station.town if station else "",
                               deputy.name if deputy else "", notes))


async def add_note(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadParam("text", "api_bad_json") from None
    except web.HTTPRequestEntityTooLarge:
        raise BadParam("text", "console_note_long") from None
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise BadParam("text", "api_bad_json")
    note = await add_internal_note(_deps(request), _account(request), request.match_info["number"], body["text"])
    if note is None:
        return _not_found(request)
    return _json(note_item(note), status=201)


async def list_stations(request: web.Request) -> web.Response:
    q, town = request.query.get("q", "").strip(), request.query.get("town", "").strip()
    async with _deps(request).uow_factory() as uow:
        stations = await visible_stations(uow, _account(request).scope)
    items = [
        {"code": s.code, "name": s.name, "kind": str(s.kind), "town": s.town, "address": s.address,
         "specialties": list(s.specialties), "places": list(s.places)}
        for s in stations
        if (not town or s.town == town) and (not q or any(q in f for f in (s.code, s.name, s.address)))
    ]
    return _json({"items": items, "total": len(items)})


async def list_deputies(request: web.Request) -> web.Response:
    q, station = request.query.get("q", "").strip(), request.query.get("station", "").strip()
    async with _deps(request).uow_factory() as uow:
        visible = {s.code for s in await visible_stations(uow, _account(request).scope)}
        if station and station not in visible:
            return _not_found(request)
        deputies = await uow.deputies.list(station or None)
    items = [
        {"code": d.code, "name": d.name, "level": d.level, "station_code": d.station_code, "phone": d.phone,
         "bound": d.openid is not None}
        for d in deputies
        if d.station_code in visible and (not q or any(q in f for f in (d.code, d.name, d.phone)))
    ]
    return _json({"items": items, "total": len(items)})


async def duty_now(request: web.Request) -> web.Response:
    deps = _deps(request)
    station = request.query.get("station", "").strip()
    now = deps.clock.now()
    async with deps.uow_factory() as uow:
        visible = {s.code: s for s in await visible_stations(uow, _account(request).scope)}
        if station and station not in visible:
            return _not_found(request)
        shifts = await uow.duty.list(station or None)
        names = {d.code: d.name for d in await uow.deputies.list(station or None)}
    items = [
        {"station_code": s.station_code, "station_name": visible[s.station_code].name, "deputy_code": s.deputy_code,
         "deputy_name": names.get(s.deputy_code, ""), "start": s.start.strftime("%H:%M"), "end": s.end.strftime("%H:%M")}
        for s in shifts
        if s.station_code in visible and s.covers(now)
    ]
    return _json({"at": iso(now), "items": items, "total": len(items)})


async def ticket_stats(request: web.Request) -> web.Response:
    deps = _deps(request)
    by = request.query.get("by", "").strip()
    if by not in STAT_GROUPS:
        raise BadParam("by", "console_bad_choice")
    rows = await deps.queries.counts(by, await _ticket_query(request), deps.clock.now())
    items = [{"key": key, "label": label, "count": n} for key, label, n in rows]
    return _json({"by": by, "items": items, "total": sum(i["count"] for i in items)})
