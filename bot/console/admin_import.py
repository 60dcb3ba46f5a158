"""Importing stations, deputies and the duty roster from Excel/CSV in the console: upload, a preview
(each bad row with its line number and reason, and the good rows), then 保存 imports the good rows.

The preview and the save are the command line's import (storage/importer.py) — the same parser and
rules; the preview is its dry run. The uploaded file waits in a temporary directory between the two
steps, named by a random id kept in the session. Town staff import only their town's rows: other
rows are reported as bad rows, with the reason."""
from __future__ import annotations

import secrets
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp_session import get_session

from bot.console.admin import manager
from bot.console.web import _deps, _not_found, _page
from bot.core.people import Deputy, Station
from bot.core.staff import AuditEntry, Scope, StaffRole
from bot.texts import Texts
from storage.import_headers import chinese_header
from storage.importer import ImportReport, import_file

KINDS = ("stations", "deputies", "duty")  # receptions have a command of their own
SUFFIXES = (".xlsx", ".xlsm", ".csv")
IMPORT_MAX_BYTES = 400 * 1024  # below the app's request limit (Settings.max_body_bytes * 2), with room
UPLOADS = Path(tempfile.gettempdir()) / "zhitongche-console-imports"
UPLOAD_HOURS = 2  # an upload not saved by then is deleted
ROUTE = "admin_import"


def add_routes(app: web.Application) -> None:
    app.middlewares.insert(0, upload_limit)  # before the guard reads the form
    app.router.add_route("*", "/import", upload, name=ROUTE)
    app.router.add_post("/import/save", save, name="admin_import_save")


@web.middleware
async def upload_limit(request: web.Request, handler: Any) -> web.StreamResponse:
    """A file over the limit gets a Chinese page, not the server's English 413."""
    is_upload = request.method == "POST" and request.match_info.route.name == ROUTE
    if is_upload and (request.content_length or 0) > IMPORT_MAX_BYTES + 16 * 1024:
        return _too_big(request)
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        if not is_upload:
            raise
        return _too_big(request)


def _too_big(request: web.Request) -> web.Response:
    texts = _deps(request).texts
    return _page(request, "admin_import.html", status=413, kinds=KINDS, kind="", headers=_headers(texts),
                 error=texts.get("console_import_too_big", kb=IMPORT_MAX_BYTES // 1024))


def _headers(texts: Texts) -> dict[str, str]:
    return {kind: chinese_header(kind, texts).replace(",", "、") for kind in KINDS}


def scope_check(kind: str, scope: Scope, stations: dict[str, Station], deputies: dict[str, Deputy],
                texts: Texts) -> Callable[[Any], str | None] | None:
    """Town staff: a row about another town (or changing another town's station or deputy) is refused."""
    if scope.role is StaffRole.DISTRICT:
        return None

    def check(item: Any) -> str | None:
        if kind == "stations":  # the row's town, and the town of the station it would change
            old = stations.get(item.code)
            towns = [item.town, *([old.town] if old else [])]
        else:  # the row's station, and (deputies) the station of the deputy it would change
            old = deputies.get(item.code) if kind == "deputies" else None
            towns = [stations[c].town for c in (item.station_code, *([old.station_code] if old else []))
                     if c in stations]
        other = next((town for town in towns if not scope.sees_town(town)), "")
        return texts.get("console_import_out_of_scope", other=other, town=scope.town) if other else None

    return check


async def _run(request: web.Request, kind: str, path: Path, *, dry_run: bool) -> ImportReport:
    deps = _deps(request)
    account = manager(request)
    assert account is not None
    async with deps.uow_factory() as uow:
        stations = {s.code: s for s in await uow.stations.list()}
        deputies = {d.code: d for d in await uow.deputies.list()}
    return await import_file(deps.uow_factory, kind, path, deps.texts, deps.clock.now(), dry_run=dry_run,
                             check=scope_check(kind, account.scope, stations, deputies, deps.texts))


def _prune_uploads() -> None:
    cutoff = time.time() - UPLOAD_HOURS * 3600
    for old in UPLOADS.glob("*"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)


def _bad_rows(report: ImportReport) -> list[tuple[int, list[str]]]:
    by_line: dict[int, list[str]] = defaultdict(list)
    for line, reason in report.errors:
        by_line[line].append(reason)
    return sorted(by_line.items())


async def upload(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    texts = deps.texts
    if manager(request) is None:
        return _not_found(request)
    kind = request.query.get("kind", "stations")
    kind = kind if kind in KINDS else "stations"

    def form(status: int, error: str) -> web.Response:
        return _page(request, "admin_import.html", status=status, kinds=KINDS, kind=kind, headers=_headers(texts),
                     error=error)

    if request.method != "POST":
        return form(200, "")
    posted = await request.post()
    kind = str(posted.get("kind", ""))
    if kind not in KINDS:
        kind = "stations"
        return form(400, texts.get("console_import_pick_kind"))
    field = posted.get("file")
    if not isinstance(field, web.FileField) or not field.filename:
        return form(400, texts.get("console_import_no_file"))
    data = field.file.read(IMPORT_MAX_BYTES + 1)
    if len(data) > IMPORT_MAX_BYTES:
        return form(413, texts.get("console_import_too_big", kb=IMPORT_MAX_BYTES // 1024))
    suffix = Path(field.filename).suffix.lower()
    if suffix not in SUFFIXES or (suffix != ".csv" and not data.startswith(b"PK")) or not data.strip():
        return form(400, texts.get("console_import_not_spreadsheet", name=field.filename))
    UPLOADS.mkdir(parents=True, exist_ok=True)
    _prune_uploads()
    upload_id = secrets.token_urlsafe(16)
    path = UPLOADS / f"{upload_id}{suffix}"
    path.write_bytes(data)
    report = await _run(request, kind, path, dry_run=True)
    if report.rows_read == 0:  # unreadable, empty, or a header we cannot read: nothing to preview
        path.unlink(missing_ok=True)
        # the reader's own words for a broken file are technical (zip, xml): say what to do instead
        broken = report.unreadable and report.errors[0][1].startswith(texts.get("import_unreadable", reason=""))
        reason = (texts.get("console_import_not_spreadsheet", name=field.filename) if broken
                  else "；".join(e for _, e in report.errors) or texts.get("console_import_no_rows"))
        return form(400, reason)
    session = await get_session(request)
    session["import"] = {"id": upload_id, "kind": kind, "suffix": suffix, "name": field.filename}
    return _page(request, "admin_preview.html", kind=kind, report=report, bad_rows=_bad_rows(report),
                 upload_id=upload_id, filename=field.filename)


async def save(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    texts = deps.texts
    account = manager(request)
    if account is None:
        return _not_found(request)
    session = await get_session(request)
    pending = session.get("import") or {}
    posted = await request.post()
    path = UPLOADS / f"{pending.get('id', '')}{pending.get('suffix', '')}"
    if not pending or posted.get("upload") != pending["id"] or not path.is_file():
        return _page(request, "admin_import.html", status=410, kinds=KINDS, kind=pending.get("kind", "stations"),
                     headers=_headers(texts), error=texts.get("console_import_expired"))
    kind = pending["kind"]
    report = await _run(request, kind, path, dry_run=False)
    path.unlink(missing_ok=True)
    session.pop("import", None)
    summary = texts.get("console_import_summary", what=texts.get(f"console_import_kind_{kind}"),
                        created=report.created, updated=report.updated, unchanged=report.unchanged,
                        skipped=len(_bad_rows(report)))
    if report.created or report.updated:
        async with deps.uow_factory() as uow:
            await uow.audit.add(AuditEntry(deps.clock.now(), account.username, "import_saved",
                                           f"import:{pending['name']}"[:128], after=summary))
            await uow.commit()
    return _page(request, "admin_preview.html", kind=kind, report=report, bad_rows=_bad_rows(report),
                 saved=True, summary=summary, filename=pending["name"])
