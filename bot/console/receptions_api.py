"""The reception and broadcast endpoints of /api/v1/ (mounted by bot/console/api.py).

Scoped like the rest of the API: a reception, station or broadcast outside the token's scope is 404,
the same answer as one that does not exist. Invalid input is a 400 whose `errors` name each field
with a Chinese message. The OpenAPI part is bot/console/receptions_openapi.py."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from aiohttp import web

from bot.console.common import ACCOUNT, DEPS, BadParam, ConsoleDeps, visible_stations
from bot.core.clock import LOCAL_TZ
from bot.core.errors import DomainError
from bot.core.people import Station
from bot.core.receptions import Reception, ReceptionInvalid
from bot.core.staff import AuditEntry, StaffAccount
from handlers import broadcasts as broadcast_cases
from handlers import receptions as reception_cases

# which request field each rule is about (DomainError key → field)
ERROR_FIELDS = {
    "reception_unknown_station": "station", "reception_no_deputy": "deputy_codes",
    "reception_unknown_deputy": "deputy_codes", "reception_deputy_busy": "deputy_codes",
    "reception_end_before_start": "end", "reception_in_past": "date", "reception_bad_topic": "topic",
    "reception_bad_place": "place", "reception_bad_capacity": "capacity", "reception_bad_date": "date",
    "broadcast_bad_audience": "station", "broadcast_bad_content": "text",
    "broadcast_unknown_audience": "station", "reception_not_found": "reception_id",
}
# the API's names of the after-reception record's fields (FollowUp's in the DomainErrors)
RECORD_FIELDS = {"deputies_present": "present"}
REFUSED = {"broadcast_nobody", "broadcast_budget_exhausted", "broadcast_unreachable"}


def add_reception_api(router: web.UrlDispatcher) -> None:
    router.add_get("/receptions", list_receptions)
    router.add_post("/receptions", create_reception)
    router.add_get("/receptions/{id}", get_reception)
    router.add_patch("/receptions/{id}", update_reception)
    router.add_post("/receptions/{id}/cancel", cancel_reception)
    router.add_post("/receptions/{id}/record", record_reception)
    router.add_post("/broadcasts", create_broadcast)
    router.add_get("/broadcasts/{id}", get_broadcast)
    router.add_post("/broadcasts/{id}/retry", retry_broadcast)


# --- plumbing ----------------------------------------------------------------------------------------
def _deps(request: web.Request) -> ConsoleDeps:
    return request.app[DEPS]


def _account(request: web.Request) -> StaffAccount:
    return request[ACCOUNT]


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _not_found(request: web.Request, **fields: Any) -> web.Response:
    return _json({"error": "not_found", "message": _deps(request).texts.get("api_not_found"), **fields}, 404)


def error_items(errors: list[DomainError], deps: ConsoleDeps,
                renamed: dict[str, str] | None = None) -> list[dict[str, str]]:
    items = []
    for e in errors:
        name = str(e.params.get("field") or ERROR_FIELDS.get(e.key, ""))
        items.append({"field": (renamed or {}).get(name, name), "message": deps.texts.get(e.key, **e.params)})
    return items


def _invalid(request: web.Request, errors: list[DomainError], status: int = 400, code: str = "invalid",
             renamed: dict[str, str] | None = None) -> web.Response:
    items = error_items(errors, _deps(request), renamed)
    return _invalid_items(items, status, code)


def _invalid_items(items: list[dict[str, str]], status: int = 400, code: str = "invalid") -> web.Response:
    return _json({"error": code, "message": "；".join(i["message"] for i in items), "errors": items}, status)


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadParam("body", "api_bad_json_object") from None


async def _object_body(request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    if not isinstance(body, dict):
        raise BadParam("body", "api_bad_json_object")
    return body


def _id(request: web.Request) -> int | None:
    text = request.match_info["id"]
    return int(text) if text.isdigit() and len(text) <= 12 else None


@dataclass(frozen=True)
class Visible:
    stations: dict[str, Station]

    def towns(self) -> set[str]:
        return {s.town for s in self.stations.values()}


async def _visible(deps: ConsoleDeps, account: StaffAccount) -> Visible:
    async with deps.uow_factory() as uow:
        return Visible({s.code: s for s in await visible_stations(uow, account.scope)})


async def audit_action(deps: ConsoleDeps, account: StaffAccount, action: str, target: str, after: str = "") -> None:
    async with deps.uow_factory() as uow:
        await uow.audit.add(AuditEntry(deps.clock.now(), account.username, action, target, after=after))
        await uow.commit()


def reception_item(reception: Reception, visible: Visible, names: dict[str, str]) -> dict[str, Any]:
    station = visible.stations.get(reception.station_code)
    item = reception_cases.reception_json(reception)
    follow_up = reception.follow_up
    return item | {
        "station_name": station.name if station else "", "town": station.town if station else "",
        "deputy_names": [names.get(c, c) for c in reception.deputy_codes],
        "record": None if follow_up is None else {"deputies_present": list(follow_up.deputies_present),
                                                  "visitors": follow_up.visitors, "notes": follow_up.notes,
                                                  "tickets": list(follow_up.tickets)},
    }


async def _deputy_names(deps: ConsoleDeps) -> dict[str, str]:
    async with deps.uow_factory() as uow:
        return {d.code: d.name for d in await uow.deputies.list()}


def _date_param(request: web.Request, name: str) -> date | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadParam(name, "console_bad_date") from None


async def reception_in_scope(deps: ConsoleDeps, account: StaffAccount, reception_id: int | None) -> Reception | None:
    """The reception, or None when it does not exist or its station lies outside the scope."""
    if reception_id is None:
        return None
    async with deps.uow_factory() as uow:
        reception = await uow.receptions.get(reception_id)
        station = await uow.stations.get(reception.station_code) if reception else None
    return reception if reception is not None and account.scope.sees_station(station) else None


# --- receptions --------------------------------------------------------------------------------------
async def list_receptions(request: web.Request) -> web.Response:
    deps, account = _deps(request), _account(request)
    station, town = request.query.get("station", "").strip(), request.query.get("town", "").strip()
    first, last = _date_param(request, "from"), _date_param(request, "to")
    if first and last and first > last:
        raise BadParam("to", "console_bad_range")
    visible = await _visible(deps, account)
    if station and station not in visible.stations:
        return _not_found(request)
    found = await reception_cases.list_receptions(deps.services, station=station or None, town=town or None,
                                                  first=first, last=last)
    names = await _deputy_names(deps)
    items = [reception_item(r, visible, names) for r in found if r.station_code in visible.stations]
    return _json({"items": items, "total": len(items)})


async def get_reception(request: web.Request) -> web.Response:
    deps = _deps(request)
    reception = await reception_in_scope(deps, _account(request), _id(request))
    if reception is None:
        return _not_found(request)
    return _json(reception_item(reception, await _visible(deps, _account(request)), await _deputy_names(deps)))


async def create_reception(request: web.Request) -> web.Response:
    deps, account = _deps(request), _account(request)
    body = await _body(request)
    try:
        reception = reception_cases.reception_from_json(body)
    except ReceptionInvalid as invalid:
        return _invalid(request, invalid.errors)
    visible = await _visible(deps, account)
    if reception.station_code not in visible.stations:  # unknown, or another town's: the same answer
        return _not_found(request, field="station", message=deps.texts.get(
            "reception_unknown_station", station=reception.station_code))
    try:
        stored = await reception_cases.create_reception(deps.services, reception)
    except ReceptionInvalid as invalid:
        return _invalid(request, invalid.errors)
    await audit_action(deps, account, "reception_created", f"reception:{stored.id}",
                 after=reception_cases.reception_line(stored, await _deputy_names(deps), deps.texts))
    return _json(reception_item(stored, visible, await _deputy_names(deps)), 201)


async def update_reception(request: web.Request) -> web.Response:
    """PATCH: the fields given replace the stored ones; a change of date, time, place or deputies
    is told to everyone already told of it."""
    deps, account = _deps(request), _account(request)
    current = await reception_in_scope(deps, account, _id(request))
    if current is None:
        return _not_found(request)
    body = await _object_body(request)
    if not current.scheduled:
        return _invalid(request, [DomainError("reception_edit_cancelled")], status=409, code="refused")
    try:
        reception = reception_cases.reception_from_json({**reception_cases.reception_json(current), **body})
    except ReceptionInvalid as invalid:
        return _invalid(request, invalid.errors)
    visible = await _visible(deps, account)
    if reception.station_code not in visible.stations:
        return _not_found(request, field="station", message=deps.texts.get(
            "reception_unknown_station", station=reception.station_code))
    try:
        stored = await reception_cases.create_reception(deps.services, replace(reception, id=current.id))
    except ReceptionInvalid as invalid:
        return _invalid(request, invalid.errors)
    names = await _deputy_names(deps)
    if stored != current:
        await audit_action(deps, account, "reception_updated", f"reception:{stored.id}",
                           after=reception_cases.reception_line(stored, names, deps.texts))
    return _json(reception_item(stored, visible, names))


ISSUE_TEXTS = ("summary", "details", "place", "category", "phone")


def _record_from_json(body: Any, deps: ConsoleDeps) -> tuple[Any, list[dict[str, Any]], list[dict[str, str]]]:
    """`{present, visitors, notes?, issues?}` → (FollowUp, issues, errors naming each bad field)."""
    from bot.core.receptions import FollowUp

    errors: list[dict[str, str]] = []

    def bad(name: str) -> None:
        errors.append({"field": name, "message": deps.texts.get("reception_bad_field", field=name)})

    present, visitors = body.get("present"), body.get("visitors")
    notes, issues = body.get("notes", ""), body.get("issues", [])
    if not isinstance(present, list) or not all(isinstance(c, str) for c in present):
        bad("present")
        present = []
    if not isinstance(visitors, int) or isinstance(visitors, bool):
        bad("visitors")
        visitors = 0
    if not isinstance(notes, str):
        bad("notes")
        notes = ""
    if not isinstance(issues, list):
        bad("issues")
        issues = []
    rows = []
    for i, issue in enumerate(issues):
        if not isinstance(issue, dict) or not all(isinstance(issue.get(f, ""), str) for f in ISSUE_TEXTS) \
                or not isinstance(issue.get("phone_consent", False), bool):
            bad(f"issues[{i}]")
            continue
        rows.append({f: issue.get(f, "") for f in ISSUE_TEXTS} | {"phone_consent": issue.get("phone_consent", False)})
    return FollowUp(tuple(dict.fromkeys(present)), visitors, notes.strip()), rows, errors


async def record_reception(request: web.Request) -> web.Response:
    """The after-reception record: deputies present, how many came, and the issues raised, each
    filed as a ticket on the visitor's behalf (all checked before any is filed)."""
    from bot.console.ticket_actions import refusal_text
    from bot.core.staff import ActionRefused
    from handlers.staff_actions import check_visitor_report, file_for_visitor

    deps, account = _deps(request), _account(request)
    reception = await reception_in_scope(deps, account, _id(request))
    if reception is None:
        return _not_found(request)
    body = await _object_body(request)
    follow_up, issues, errors = _record_from_json(body, deps)
    if not errors:
        errors = error_items(reception_cases.check_follow_up(reception, follow_up, deps.clock.now().date()), deps,
                             RECORD_FIELDS)
    for i, issue in enumerate(issues):
        try:
            check_visitor_report(issue["summary"], issue["details"], issue["place"] or reception.place,
                                 issue["category"], issue["phone"])
        except ActionRefused as refused:
            errors.append({"field": f"issues[{i}].{refused.field}", "message": deps.texts.get(
                "reception_record_issue_refused", n=i + 1, reason=refusal_text(deps.texts, refused))})
    if errors:
        return _invalid_items(errors)
    filed = []
    for issue in issues:
        ticket = await file_for_visitor(deps.services, account, summary=issue["summary"], details=issue["details"],
                                        place=issue["place"] or reception.place, category=issue["category"],
                                        phone=issue["phone"], phone_consent=issue["phone_consent"],
                                        station_code=reception.station_code, reception_id=reception.id)
        filed.append(ticket.number)
    recorded = await reception_cases.record_reception(deps.services, reception.id,  # type: ignore[arg-type]
                                                      replace(follow_up, tickets=tuple(filed)))
    await audit_action(deps, account, "reception_recorded", f"reception:{reception.id}",
                       after=deps.texts.get("console_rc_record_audit", visitors=follow_up.visitors,
                                            tickets="、".join(f"#{n}" for n in filed) or "—"))
    return _json(reception_item(recorded, await _visible(deps, account), await _deputy_names(deps)))


async def cancel_reception(request: web.Request) -> web.Response:
    deps, account = _deps(request), _account(request)
    reception = await reception_in_scope(deps, account, _id(request))
    if reception is None:
        return _not_found(request)
    was_scheduled = reception.scheduled
    cancelled = await reception_cases.cancel_reception(deps.services, reception.id)  # type: ignore[arg-type]
    if was_scheduled:
        await audit_action(deps, account, "reception_cancelled", f"reception:{reception.id}")
    return _json(reception_item(cancelled, await _visible(deps, account), await _deputy_names(deps)))


# --- broadcasts --------------------------------------------------------------------------------------
def audience_in_scope(visible: Visible, kind: str, audience: str, all_stations: list[Station]) -> bool:
    """A station the account sees, or a town all of whose stations it sees."""
    if kind == "station":
        return audience in visible.stations
    codes = [s.code for s in all_stations if s.town == audience]
    return bool(codes) and all(c in visible.stations for c in codes)


async def create_broadcast(request: web.Request) -> web.Response:
    deps, account = _deps(request), _account(request)
    body = await _body(request)
    try:
        wanted = broadcast_cases.request_from_json(body)
    except DomainError as bad:
        return _invalid(request, [bad])
    visible = await _visible(deps, account)
    async with deps.uow_factory() as uow:
        all_stations = list(await uow.stations.list())
    if not audience_in_scope(visible, wanted.audience_kind, wanted.audience, all_stations):
        return _not_found(request, field=wanted.audience_kind)
    if wanted.reception_id is not None and await reception_in_scope(deps, account, wanted.reception_id) is None:
        return _not_found(request, field="reception_id")
    try:
        broadcast, plan = await broadcast_cases.create_broadcast(deps.services, replace(wanted, created_by=account.username))
    except DomainError as refused:
        if refused.key in REFUSED:
            return _invalid(request, [refused], status=409, code="refused")
        return _invalid(request, [refused])
    if broadcast is None:
        return _json({"id": None, "dry_run": True, "plan": plan.summary()})
    await audit_action(deps, account, "broadcast_sent", f"broadcast:{broadcast.id}", after=broadcast.text)
    if deps.send_broadcast is not None:
        deps.send_broadcast(broadcast.id)  # type: ignore[arg-type]
    return _json({"id": broadcast.id, "dry_run": False, "plan": plan.summary()}, 201)


async def broadcast_in_scope(deps: ConsoleDeps, account: StaffAccount, broadcast_id: int | None) -> Any:
    if broadcast_id is None:
        return None
    async with deps.uow_factory() as uow:
        broadcast = await uow.broadcasts.get(broadcast_id)
        all_stations = list(await uow.stations.list()) if broadcast else []
    if broadcast is None:
        return None
    visible = await _visible(deps, account)
    return broadcast if audience_in_scope(visible, broadcast.audience_kind, broadcast.audience, all_stations) else None


async def broadcast_view(deps: ConsoleDeps, broadcast: Any) -> dict[str, Any]:
    status = await broadcast_cases.broadcast_status(deps.services, broadcast.id)
    pending = sum(p["pending"] for p in status["progress"].values())
    failed = sum(p["failed"] for p in status["progress"].values())
    state = "sending" if pending else "failed" if failed else "done"
    return {"id": broadcast.id, "audience_kind": broadcast.audience_kind, "audience": broadcast.audience,
            "text": broadcast.text, "reception_id": broadcast.reception_id, "created_by": broadcast.created_by,
            "created_at": broadcast.created_at.replace(tzinfo=LOCAL_TZ).isoformat(), "state": state,
            "plan": status["plan"], "progress": status["progress"], "failures": status["failures"]}


async def get_broadcast(request: web.Request) -> web.Response:
    deps = _deps(request)
    broadcast = await broadcast_in_scope(deps, _account(request), _id(request))
    if broadcast is None:
        return _not_found(request)
    return _json(await broadcast_view(deps, broadcast))


async def retry_broadcast(request: web.Request) -> web.Response:
    deps, account = _deps(request), _account(request)
    broadcast = await broadcast_in_scope(deps, account, _id(request))
    if broadcast is None:
        return _not_found(request)
    retried = await broadcast_cases.retry_failed(deps.services, broadcast.id)
    if retried:
        await audit_action(deps, account, "broadcast_retried", f"broadcast:{broadcast.id}", after=str(retried))
        if deps.send_broadcast is not None:
            deps.send_broadcast(broadcast.id)
    return _json({"retried": retried, **await broadcast_view(deps, broadcast)})
