"""The console's reception days and broadcasts: the list of receptions, the create/edit form,
cancelling, and a broadcast in three steps — choose whom and what, see the plan (people by
channel, who cannot be reached, each station's monthly mass-send budget), send — then its
progress per channel with failures to retry. Mounted by bot/console/web.py; the same use cases
and scope rules as the API (bot/console/receptions_api.py)."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from bot.console.common import visible_stations
from bot.console.receptions_api import _account, _deps, _id  # the same request plumbing
from bot.console.receptions_api import (
    Visible,
    audience_in_scope,
    audit_action,
    broadcast_in_scope,
    broadcast_view,
    error_items,
    reception_in_scope,
)
from bot.core.errors import DomainError
from bot.core.receptions import ReceptionInvalid
from handlers import broadcasts as broadcast_cases
from handlers.notify import shorten
from handlers.reception_notices import changed
from handlers import receptions as reception_cases

LIST_DAYS = 60  # the list shows this far ahead unless asked otherwise


def add_reception_pages(router: web.UrlDispatcher) -> None:
    router.add_get("/receptions", receptions_list, name="receptions")
    router.add_route("*", "/receptions/new", reception_form, name="reception_new")
    router.add_route("*", "/receptions/{id}/edit", reception_form, name="reception_edit")
    router.add_post("/receptions/{id}/cancel", reception_cancel, name="reception_cancel")
    router.add_route("*", "/receptions/{id}/record", reception_record, name="reception_record")
    router.add_get("/broadcasts", broadcasts_list, name="broadcasts")
    router.add_get("/broadcasts/new", broadcast_new, name="broadcast_new")
    router.add_post("/broadcasts/plan", broadcast_plan, name="broadcast_plan")
    router.add_post("/broadcasts", broadcast_send, name="broadcast_send")
    router.add_get("/broadcasts/{id}", broadcast_page, name="broadcast")
    router.add_post("/broadcasts/{id}/retry", broadcast_retry, name="broadcast_retry")


def _web() -> Any:
    from bot.console import web as console_web  # web.py mounts this module: imported when used

    return console_web


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    return _web()._page(request, template, status=status, **context)


def _not_found(request: web.Request) -> web.Response:
    return _web()._not_found(request)


async def _visible(request: web.Request) -> Visible:
    async with _deps(request).uow_factory() as uow:
        return Visible({s.code: s for s in await visible_stations(uow, _account(request).scope)})


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None


# --- receptions ----------------------------------------------------------------------------------
async def receptions_list(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    visible = await _visible(request)
    q = request.query
    station, town = q.get("station", "").strip(), q.get("town", "").strip()
    today = deps.clock.now().date()
    first = _day(q.get("from", "")) or today
    last = _day(q.get("to", "")) or first + timedelta(days=LIST_DAYS)
    error = deps.texts.get("console_bad_range") if last < first else ""
    found = [] if error or (station and station not in visible.stations) else await reception_cases.list_receptions(
        deps.services, station=station or None, town=town or None, first=first, last=last)
    shown = [r for r in found if r.station_code in visible.stations]
    async with deps.uow_factory() as uow:
        names = {d.code: d.name for d in await uow.deputies.list()}
    return _page(request, "receptions.html", status=400 if error else 200, error=error, shown=shown, names=names,
                 stations_by_code=visible.stations, towns=sorted(visible.towns()),
                 stations=list(visible.stations.values()), first=first, last=last, today=today,
                 notice=deps.texts.get(q["done"], n=int(q.get("n", "0")) if q.get("n", "0").isdigit() else 0)
                 if q.get("done", "").startswith("console_rc_done_") else "")


def _form_body(form: Any) -> dict[str, Any]:
    """The form's fields as the API's JSON body, so both are checked by the same rules."""
    capacity_text = str(form.get("capacity", "")).strip()
    capacity: Any = int(capacity_text) if capacity_text.isdigit() else (capacity_text or None)
    return {"station": str(form.get("station", "")), "deputy_codes": [str(c) for c in form.getall("deputy", [])],
            "date": str(form.get("date", "")), "start": str(form.get("start", "")), "end": str(form.get("end", "")),
            "topic": str(form.get("topic", "")), "place": str(form.get("place", "")),
            "live_url": str(form.get("live_url", "")), "capacity": capacity}


async def reception_form(request: web.Request) -> web.StreamResponse:
    deps, account = _deps(request), _account(request)
    visible = await _visible(request)
    current = None
    if "id" in request.match_info:
        current = await reception_in_scope(deps, account, _id(request))
        if current is None or not current.scheduled:
            return _not_found(request)
    async with deps.uow_factory() as uow:
        deputies = [d for d in await uow.deputies.list() if d.station_code in visible.stations]
    context = {"current": current, "stations": list(visible.stations.values()), "deputies": deputies}
    if request.method != "POST":
        values = reception_cases.reception_json(current) if current else {
            "station": request.query.get("station", ""), "deputy_codes": [], "date": "", "start": "09:00",
            "end": "11:00", "topic": "", "place": "", "live_url": "", "capacity": None}
        return _page(request, "reception_form.html", values=values, errors=[], **context)
    body = _form_body(await request.post())
    errors: list[DomainError] = []
    try:
        reception = reception_cases.reception_from_json(body)
        if reception.station_code not in visible.stations:
            raise ReceptionInvalid([DomainError("reception_unknown_station", station=reception.station_code)])
        told = 0
        if current is not None:
            reception = replace(reception, id=current.id)
            if changed(current, reception):  # they are told of it (handlers/reception_notices.py)
                async with deps.uow_factory() as uow:
                    told = len(await uow.reminders.told(current.id))  # type: ignore[arg-type]
        stored = await reception_cases.create_reception(deps.services, reception)
    except ReceptionInvalid as invalid:
        errors = invalid.errors
    if errors:
        items = error_items(errors, deps)
        return _page(request, "reception_form.html", status=400, values=body, errors=items, **context)
    names = {d.code: d.name for d in deputies}
    await audit_action(deps, account, "reception_updated" if current else "reception_created", f"reception:{stored.id}",
                 after=reception_cases.reception_line(stored, names, deps.texts))
    beyond = stored.day > deps.clock.now().date() + timedelta(days=LIST_DAYS)  # still shown in the list
    done = f"console_rc_done_saved_told&n={told}" if told else "console_rc_done_saved"
    raise web.HTTPFound(f"/console/receptions?done={done}" + (f"&to={stored.day}" if beyond else ""))


async def reception_cancel(request: web.Request) -> web.StreamResponse:
    deps, account = _deps(request), _account(request)
    reception = await reception_in_scope(deps, account, _id(request))
    if reception is None:
        return _not_found(request)
    if reception.scheduled:
        await reception_cases.cancel_reception(deps.services, reception.id)  # type: ignore[arg-type]
        await audit_action(deps, account, "reception_cancelled", f"reception:{reception.id}")
    raise web.HTTPFound(f"/console/receptions?from={reception.day.isoformat()}&done=console_rc_done_cancelled")


# --- after the reception: who came, and the issues raised (each a ticket on the visitor's behalf) ---
ISSUE_ROWS = 3  # blank issue rows on the form; recording again adds more
ISSUE_FIELDS = ("summary", "details", "place", "category", "phone")


def _issues(form: Any) -> list[dict[str, Any]]:
    rows = []
    for i in range(ISSUE_ROWS):
        row: dict[str, Any] = {f: str(form.get(f"{f}_{i}", "")).strip() for f in ISSUE_FIELDS}
        row["consent"] = form.get(f"consent_{i}") == "yes"
        rows.append(row)
    return rows


async def reception_record(request: web.Request) -> web.StreamResponse:
    from bot.core.receptions import FollowUp
    from bot.core.staff import ActionRefused
    from bot.core.tickets import CATEGORIES
    from bot.console.ticket_actions import refusal_text
    from handlers.staff_actions import file_for_visitor

    deps, account = _deps(request), _account(request)
    reception = await reception_in_scope(deps, account, _id(request))
    if reception is None:
        return _not_found(request)
    async with deps.uow_factory() as uow:
        names = {d.code: d.name for d in await uow.deputies.list()}
    done = reception.follow_up
    context = {"r": reception, "names": names, "line": reception_cases.reception_line(reception, names, deps.texts),
               "categories": CATEGORIES, "rows": range(ISSUE_ROWS)}
    if request.method != "POST":
        values = {"present": list(done.deputies_present) if done else list(reception.deputy_codes),
                  "visitors": str(done.visitors) if done else "", "notes": done.notes if done else "",
                  "issues": [{"category": "其他"} for _ in range(ISSUE_ROWS)]}
        return _page(request, "reception_record.html", values=values, errors=[], filed=list(done.tickets) if done else [],
                     **context)
    form = await request.post()
    visitors_text = str(form.get("visitors", "")).strip()
    values = {"present": [str(c) for c in form.getall("present", [])], "visitors": visitors_text,
              "notes": str(form.get("notes", "")).strip(), "issues": _issues(form)}
    follow_up = FollowUp(tuple(values["present"]), int(visitors_text) if visitors_text.isdigit() else -1,
                         values["notes"])
    errors = error_items(reception_cases.check_follow_up(reception, follow_up, deps.clock.now().date()), deps)
    filed: list[int] = []
    if not errors:  # the record is sound: file the issues one by one, stop at the first refused
        for i, issue in enumerate(values["issues"]):
            if not any(issue[f] for f in ("summary", "details", "phone")):
                continue
            try:
                ticket = await file_for_visitor(
                    deps.services, account, summary=issue["summary"], details=issue["details"],
                    place=issue["place"] or reception.place, category=issue["category"], phone=issue["phone"],
                    phone_consent=issue["consent"], station_code=reception.station_code, reception_id=reception.id)
            except ActionRefused as refused:
                errors.append({"field": f"{refused.field}_{i}", "message": deps.texts.get(
                    "console_rc_issue_refused", n=i + 1, reason=refusal_text(deps.texts, refused))})
                break
            filed.append(ticket.number)
            values["issues"][i] = {"category": "其他"}  # filed: its row is cleared, nothing typed twice
        recorded = await reception_cases.record_reception(deps.services, reception.id,  # type: ignore[arg-type]
                                                          replace(follow_up, tickets=tuple(filed)))
        await audit_action(deps, account, "reception_recorded", f"reception:{reception.id}",
                           after=deps.texts.get("console_rc_record_audit", visitors=follow_up.visitors,
                                                tickets="、".join(f"#{n}" for n in filed) or "—"))
        if not errors:
            raise web.HTTPFound(f"/console/receptions/{reception.id}/record?saved={len(filed)}")
        context["r"] = recorded
    return _page(request, "reception_record.html", status=400, values=values, errors=errors,
                 filed=list((context["r"].follow_up or FollowUp()).tickets), **context)


# --- broadcasts ----------------------------------------------------------------------------------
async def _choices(request: web.Request, visible: Visible) -> dict[str, Any]:
    """Whom a broadcast can go to (stations, and towns whose stations are all in scope) and the
    receptions it can announce."""
    deps = _deps(request)
    async with deps.uow_factory() as uow:
        everyone = list(await uow.stations.list())
        names = {d.code: d.name for d in await uow.deputies.list()}
    towns = [t for t in sorted(visible.towns()) if audience_in_scope(visible, "town", t, everyone)]
    upcoming = [r for r in await reception_cases.list_receptions(deps.services)
                if r.scheduled and r.station_code in visible.stations]
    lines = {r.id: reception_cases.reception_line(r, names, deps.texts) for r in upcoming}
    return {"towns": towns, "stations": list(visible.stations.values()), "upcoming": upcoming, "lines": lines,
            "everyone": everyone}


def _request_from_form(form: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The API's body from the form (audience "station:CODE" or "town:NAME"), and the raw values."""
    audience = str(form.get("audience", ""))
    kind, _, name = audience.partition(":")
    values = {"audience": audience, "content": str(form.get("content", "text")), "text": str(form.get("text", "")),
              "reception_id": str(form.get("reception_id", ""))}
    body: dict[str, Any] = {kind: name} if kind in ("station", "town") and name else {}
    if values["content"] == "reception":
        body["reception_id"] = int(values["reception_id"]) if values["reception_id"].isdigit() else None
    else:
        body["text"] = values["text"]
    return body, values


async def broadcast_new(request: web.Request) -> web.StreamResponse:
    visible = await _visible(request)
    choices = await _choices(request, visible)
    q = request.query
    reception_id = q.get("reception", "")
    audience = f"station:{q['station']}" if q.get("station") else f"town:{q['town']}" if q.get("town") else ""
    if reception_id.isdigit() and not audience:
        found = next((r for r in choices["upcoming"] if r.id == int(reception_id)), None)
        audience = f"station:{found.station_code}" if found else ""
    values = {"audience": audience, "content": "reception" if reception_id else "text", "text": "",
              "reception_id": reception_id}
    return _page(request, "broadcast_new.html", values=values, **choices)


async def _planned(request: web.Request) -> tuple[Any, dict[str, Any], dict[str, Any], Visible] | web.Response:
    deps = _deps(request)
    visible = await _visible(request)
    choices = await _choices(request, visible)
    body, values = _request_from_form(await request.post())
    try:
        wanted = broadcast_cases.request_from_json({**body, "dry_run": True})
    except DomainError as bad:
        return _page(request, "broadcast_new.html", status=400, values=values,
                     error=deps.texts.get(bad.key, **bad.params), **choices)
    if not audience_in_scope(visible, wanted.audience_kind, wanted.audience, choices["everyone"]):
        return _not_found(request)
    if wanted.reception_id is not None and await reception_in_scope(deps, _account(request), wanted.reception_id) is None:
        return _not_found(request)
    return wanted, values, choices, visible


async def broadcast_plan(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    planned = await _planned(request)
    if isinstance(planned, web.Response):
        return planned
    wanted, values, choices, visible = planned
    codes = [s.code for s in choices["everyone"]
             if (s.code if wanted.audience_kind == "station" else s.town) == wanted.audience]
    budgets = await broadcast_cases.station_budgets(deps.services, codes)
    refused, plan = "", None
    try:
        _, plan = await broadcast_cases.create_broadcast(deps.services, wanted)
    except DomainError as error:
        refused = deps.texts.get(error.key, **error.params)
    text = deps.texts.get("broadcast_announcement", line=choices["lines"].get(wanted.reception_id, "")) \
        if wanted.reception_id else wanted.text  # as it will go out
    return _page(request, "broadcast_plan.html", status=409 if refused else 200, values=values, wanted=wanted,
                 plan=plan.summary() if plan else None, refused=refused, budgets=budgets,
                 stations_by_code={s.code: s for s in choices["everyone"]}, text=text)


async def broadcast_send(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    planned = await _planned(request)
    if isinstance(planned, web.Response):
        return planned
    wanted, values, choices, _ = planned
    try:
        broadcast, _ = await broadcast_cases.create_broadcast(deps.services, replace(
            wanted, dry_run=False, created_by=_account(request).username))
    except DomainError as error:
        return _page(request, "broadcast_new.html", status=409, values=values,
                     error=deps.texts.get(error.key, **error.params), **choices)
    assert broadcast is not None and broadcast.id is not None
    await audit_action(deps, _account(request), "broadcast_sent", f"broadcast:{broadcast.id}", after=broadcast.text)
    if deps.send_broadcast is not None:
        deps.send_broadcast(broadcast.id)
    raise web.HTTPFound(f"/console/broadcasts/{broadcast.id}")


LIST_PER_PAGE = 20
CHANNEL_KEYS = ("mass_tag", "mass_openids", "subscribe", "customer_service")


async def broadcasts_list(request: web.Request) -> web.StreamResponse:
    """群发记录: the broadcasts to the account's stations and towns, newest first, each with its
    plan per channel, progress, result and failures (retried on its own page)."""
    deps = _deps(request)
    visible = await _visible(request)
    async with deps.uow_factory() as uow:
        everyone = list(await uow.stations.list())
        accounts = {a.username: a.name or a.username for a in await uow.staff.list()}
    towns = [t for t in visible.towns() if audience_in_scope(visible, "town", t, everyone)]
    page_text = request.query.get("page", "1")
    page_no = int(page_text) if page_text.isdigit() and 0 < int(page_text) <= 10_000 else 1
    async with deps.uow_factory() as uow:
        found = list(await uow.broadcasts.recent(list(visible.stations), towns, limit=LIST_PER_PAGE + 1,
                                                 offset=(page_no - 1) * LIST_PER_PAGE))
    names = {s.code: s.name for s in everyone}
    rows = []
    for broadcast in found[:LIST_PER_PAGE]:
        view = await broadcast_view(deps, broadcast)
        planned = sum(view["plan"].get(k, 0) for k in CHANNEL_KEYS if k != "customer_service")
        done = sum(p["sent"] for p in view["progress"].values())  # customer-service ones: queued, not counted
        rows.append({"b": view, "audience": names.get(broadcast.audience, broadcast.audience)
                     if broadcast.audience_kind == "station" else broadcast.audience,
                     "who": accounts.get(broadcast.created_by, broadcast.created_by) or "—",
                     "what": shorten(broadcast.text, 70), "planned": planned, "done": done})
    return _page(request, "broadcasts.html", rows=rows, page_no=page_no, more=len(found) > LIST_PER_PAGE,
                 channels=CHANNEL_KEYS)


async def broadcast_page(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    broadcast = await broadcast_in_scope(deps, _account(request), _id(request))
    if broadcast is None:
        return _not_found(request)
    view = await broadcast_view(deps, broadcast)
    audience = broadcast.audience
    if broadcast.audience_kind == "station":
        async with deps.uow_factory() as uow:
            station = await uow.stations.get(audience)
        audience = station.name if station else audience
    async with deps.uow_factory() as uow:
        sender = await uow.staff.get(broadcast.created_by) if broadcast.created_by else None
    who = (sender.name or sender.username) if sender else broadcast.created_by
    return _page(request, "broadcast.html", b=view, audience=audience, who=who,
                 retried=request.query.get("retried", ""))


async def broadcast_retry(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    broadcast = await broadcast_in_scope(deps, _account(request), _id(request))
    if broadcast is None:
        return _not_found(request)
    retried = await broadcast_cases.retry_failed(deps.services, broadcast.id)
    if retried:
        await audit_action(deps, _account(request), "broadcast_retried", f"broadcast:{broadcast.id}", after=str(retried))
        if deps.send_broadcast is not None:
            deps.send_broadcast(broadcast.id)
    raise web.HTTPFound(f"/console/broadcasts/{broadcast.id}?retried={retried}")
