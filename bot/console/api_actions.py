"""The API's ticket actions (/api/v1/): a report filed for a visitor, an assignment. The same use
cases as the console's forms (handlers/staff_actions.py), the same scope: a ticket outside the
token's scope is 404. Refusals are 400 in Chinese with the parameter named; a stale `revision` is
409. Registered by api.py (`add_action_routes`); described in bot/console/openapi.py."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.console.api import _account, _deps, _json, _not_found, error, ticket_detail
from bot.console.common import BadParam
from bot.console.ticket_actions import refusal_text
from bot.core.ports import ConcurrentUpdate
from bot.core.staff import ActionRefused, NotInScope
from bot.core.tickets import Ticket
from handlers import staff_actions

VISITOR_STRINGS = ("summary", "details", "place", "category", "phone", "station")


def add_action_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/tickets", file_ticket)
    r.add_post("/tickets/{number}/assign", assign_ticket)


async def _body(request: web.Request, first: str) -> dict[str, Any]:
    """The JSON object posted; unreadable, it is a 400 about `first` (the main parameter)."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError, web.HTTPRequestEntityTooLarge):
        raise BadParam(first, "api_action_bad_json") from None
    if not isinstance(body, dict):
        raise BadParam(first, "api_action_bad_json")
    return body


def _refused(request: web.Request, refused: ActionRefused) -> web.Response:
    texts = _deps(request).texts
    return _json({"error": "bad_parameter", "message": refusal_text(texts, refused), "parameter": refused.field},
                 status=400)


async def _detail(request: web.Request, ticket: Ticket, status: int) -> web.Response:
    async with _deps(request).uow_factory() as uow:
        station = await uow.stations.get(ticket.station_code)
        deputy = await uow.deputies.get(ticket.deputy_code) if ticket.deputy_code else None
        notes = list(await uow.notes.for_ticket(ticket.number))
    return _json(ticket_detail(ticket, station.name if station else "", station.town if station else "",
                               deputy.name if deputy else "", notes), status=status)


async def file_ticket(request: web.Request) -> web.Response:
    body = await _body(request, "summary")
    for name in VISITOR_STRINGS:
        if not isinstance(body.get(name, ""), str):
            raise BadParam(name, "api_action_bad_json")
    consent, reception = body.get("phone_consent", False), body.get("reception_id")
    if not isinstance(consent, bool):
        raise BadParam("phone_consent", "api_action_bad_json")
    if reception is not None and (not isinstance(reception, int) or isinstance(reception, bool)):
        raise BadParam("reception_id", "api_action_bad_json")
    try:
        ticket = await staff_actions.file_for_visitor(
            _deps(request).services, _account(request), summary=body.get("summary", ""),  # type: ignore[arg-type]
            details=body.get("details", ""), place=body.get("place", ""), category=body.get("category", ""),
            phone=body.get("phone", ""), phone_consent=consent, station_code=body.get("station", ""),
            reception_id=reception)
    except ActionRefused as refused:
        return _refused(request, refused)
    return await _detail(request, ticket, 201)


async def assign_ticket(request: web.Request) -> web.Response:
    number = staff_actions.parse_id(request.match_info["number"])
    if number is None:
        return _not_found(request)
    body = await _body(request, "deputy_code")
    code, revision = body.get("deputy_code"), body.get("revision")
    if not isinstance(code, str):
        raise BadParam("deputy_code", "api_action_bad_json")
    if revision is not None and (not isinstance(revision, int) or isinstance(revision, bool)):
        raise BadParam("revision", "api_action_bad_json")
    try:
        ticket = await staff_actions.assign(_deps(request).services, _account(request), number, code,  # type: ignore[arg-type]
                                            revision)
    except NotInScope:
        return _not_found(request)
    except ActionRefused as refused:
        return _refused(request, refused)
    except ConcurrentUpdate:
        return error(request, 409, "conflict", "action_stale")
    return await _detail(request, ticket, 200)
