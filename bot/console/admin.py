"""Stations and deputies administration in the console: edit forms (checked by the import's rules,
audited, scoped, with a version so a concurrent edit is told to reload), a deputy's printable bind
code and unbinding a deputy's WeChat. The spreadsheet import with its preview is admin_import.py.

District staff manage everything; town staff their town's stations and deputies; station staff
none of it (404, like a page that does not exist)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from aiohttp import web

from bot.console.common import visible_stations
from bot.console.web import _account, _deps, _not_found, _page
from bot.core.errors import DomainError
from bot.core.people import DEPUTY_LEVELS, Deputy, Station, StationKind
from bot.core.staff import AuditEntry, StaffAccount, StaffRole
from bot.core.tickets import CATEGORIES
from handlers.deputies import BIND_CODE_TTL, create_bind_code
from handlers.deputy_admin import unbind_deputy
from storage.importer import check_record

LIST_SEPARATOR = "、"
NOUNS = {"stations": "station", "deputies": "deputy"}  # audit actions and targets: station_edited, station:SZ-01


def add_admin_routes(app: web.Application) -> None:
    from bot.console import admin_import

    r = app.router
    r.add_route("*", "/stations/{code}/edit", station_edit, name="admin_station_edit")
    r.add_route("*", "/deputies/{code}/edit", deputy_edit, name="admin_deputy_edit")
    r.add_post("/deputies/{code}/bind-code", bind_code_slip, name="admin_bind_code")
    r.add_post("/deputies/{code}/unbind", unbind, name="admin_unbind")
    admin_import.add_routes(app)


def manager(request: web.Request) -> StaffAccount | None:
    """The signed-in account when it may manage stations and deputies (district or town)."""
    account = _account(request)
    return account if account.role in (StaffRole.DISTRICT, StaffRole.TOWN) else None


def version_of(item: Any) -> str:
    """What the edit form was opened on: a save against anything else was overtaken by another edit."""
    return hashlib.sha256(repr(item).encode()).hexdigest()[:16]


def _labels(request: web.Request, kind: str) -> dict[str, str]:
    return {c: names[0] for c, names in _deps(request).texts.raw("import_headers")[kind].items()}


def changes(labels: dict[str, str], before: Any, after: Any) -> tuple[str, str]:
    """The audit's before → after: only the fields that changed, named in Chinese."""
    def shown(value: Any) -> str:
        return LIST_SEPARATOR.join(value) if isinstance(value, tuple) else str(value)

    changed = [f.name for f in fields(before) if f.name in labels and getattr(before, f.name) != getattr(after, f.name)]
    return ("；".join(f"{labels[n]}：{shown(getattr(before, n))}" for n in changed),
            "；".join(f"{labels[n]}：{shown(getattr(after, n))}" for n in changed))


async def _save(request: web.Request, kind: str, cells: dict[str, str], version: str, station_codes: set[str],
                form: Callable[..., web.Response]) -> web.StreamResponse:
    """Check the edited record by the import's rules and store it, unless someone changed it since
    the form was opened (`version`): then the form says reload. The audit log gets before → after."""
    deps = _deps(request)
    item, errors = check_record(kind, cells, {"stations": station_codes, "deputies": set()}, deps.texts)
    if errors:
        return form(400, cells=cells, version=version, errors=errors)
    async with deps.uow_factory() as uow:
        repository = getattr(uow, kind)
        current = await repository.get(item.code)
        if current is None or version_of(current) != version:
            return form(409, cells=cells, version=version, errors=[deps.texts.get("console_edit_conflict")])
        if isinstance(item, Deputy):
            item = replace(item, openid=current.openid)  # an edit never touches the WeChat binding
        if current != item:
            await repository.upsert(item)
            before, after = changes(_labels(request, kind), current, item)
            noun = NOUNS[kind]
            await uow.audit.add(AuditEntry(deps.clock.now(), _account(request).username, f"{noun}_edited",
                                           f"{noun}:{item.code}", before, after))
            await uow.commit()
    raise web.HTTPFound(f"/console/{kind}/{item.code}/edit?saved=1")


# --- stations --------------------------------------------------------------------------------------
def _station_cells(station: Station) -> dict[str, str]:
    return {"code": station.code, "name": station.name, "kind": str(station.kind), "town": station.town,
            "address": station.address, "specialties": LIST_SEPARATOR.join(station.specialties),
            "places": LIST_SEPARATOR.join(station.places)}


async def station_edit(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    account = manager(request)
    async with deps.uow_factory() as uow:
        station = await uow.stations.get(request.match_info["code"])
        towns = sorted({s.town for s in await uow.stations.list()})
    if account is None or station is None or not account.scope.sees_station(station):
        return _not_found(request)

    def form(status: int = 200, **context: Any) -> web.Response:
        return _page(request, "admin_station.html", status=status, station=station, kinds=list(StationKind),
                     towns=towns, categories=CATEGORIES, town_fixed=account.role is StaffRole.TOWN,
                     **{"cells": _station_cells(station), "version": version_of(station), **context})

    if request.method != "POST":
        return form(saved=request.query.get("saved") == "1")
    posted = await request.post()
    cells = {c: str(posted.get(c, "")) for c in ("name", "kind", "town", "address", "specialties", "places")}
    cells["code"] = station.code
    if account.role is StaffRole.TOWN:
        cells["town"] = account.town  # a town's staff cannot move a station out of their town
    return await _save(request, "stations", cells, str(posted.get("version", "")), set(), form)


# --- deputies --------------------------------------------------------------------------------------
async def _deputy_in_scope(request: web.Request) -> tuple[StaffAccount, Deputy, dict[str, Station]] | None:
    account = manager(request)
    if account is None:
        return None
    async with _deps(request).uow_factory() as uow:
        deputy = await uow.deputies.get(request.match_info["code"])
        visible = {s.code: s for s in await visible_stations(uow, account.scope)}
    if deputy is None or deputy.station_code not in visible:
        return None
    return account, deputy, visible


def _deputy_cells(deputy: Deputy) -> dict[str, str]:
    return {"code": deputy.code, "name": deputy.name, "level": deputy.level, "station_code": deputy.station_code,
            "phone": deputy.phone}


async def deputy_edit(request: web.Request, notice: str = "") -> web.StreamResponse:
    found = await _deputy_in_scope(request)
    if found is None:
        return _not_found(request)
    account, deputy, visible = found

    def form(status: int = 200, **context: Any) -> web.Response:
        return _page(request, "admin_deputy.html", status=status, deputy=deputy, stations_by_code=visible,
                     levels=DEPUTY_LEVELS, notice=notice,
                     **{"cells": _deputy_cells(deputy), "version": version_of(deputy), **context})

    if request.method != "POST" or notice:
        return form(saved=request.query.get("saved") == "1")
    posted = await request.post()
    cells = {c: str(posted.get(c, "")) for c in ("name", "level", "station_code", "phone")}
    cells["code"] = deputy.code
    return await _save(request, "deputies", cells, str(posted.get("version", "")), set(visible), form)


async def bind_code_slip(request: web.Request) -> web.StreamResponse:
    """A new one-time bind code (the use case `zhitongche deputy bind-code` runs), on a slip to print."""
    deps = _deps(request)
    found = await _deputy_in_scope(request)
    if found is None or deps.services is None:
        return _not_found(request)
    account, deputy, visible = found
    code = await create_bind_code(deps.services, deputy.code)
    now = deps.clock.now()
    async with deps.uow_factory() as uow:
        await uow.audit.add(AuditEntry(now, account.username, "bind_code_issued", f"deputy:{deputy.code}"))
        await uow.commit()
    return _page(request, "admin_slip.html", deputy=deputy, station=visible[deputy.station_code], code=code,
                 expires_at=now + BIND_CODE_TTL, hours=int(BIND_CODE_TTL.total_seconds() // 3600))


async def unbind(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    found = await _deputy_in_scope(request)
    if found is None or deps.services is None:
        return _not_found(request)
    account, deputy, _ = found
    try:
        done = await unbind_deputy(deps.services, deputy.code, account.username)
    except DomainError:  # deleted meanwhile
        return _not_found(request)
    key = "console_unbind_done" if done else "console_unbind_none"
    return await deputy_edit(request, notice=deps.texts.get(key, name=deputy.name))
