"""The host's pages of a live-stream reception under /console/live: the list and the form that
creates a session, the host's queue (new questions appear within a second through the event
stream, no reload), the presenter view in large type for the projector, and the summary with its
XLSX export. The queue's script is bot/console/static/live.js (plain, no library)."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.console import live_api
from bot.console.common import ACCOUNT, export_response
from bot.console.web import _page
from bot.core.clock import LOCAL_TZ
from bot.core.errors import DomainError
from bot.core.live import LiveSession, LiveStatus, question_view
from bot.core.staff import StaffAccount
from handlers import live
from handlers.live import LiveInvalid

log = logging.getLogger(__name__)


JS_TEXTS = ("failed", "send", "cancel", "askers", "photos", "starred", "merged_into", "ticket", "answer_label",
            "hide_label", "show", "pin", "answer", "answer_hint", "hide", "hide_hint", "star", "unstar", "similar",
            "merge", "none_now", "empty", "connected", "reconnecting", "ended",
            *(f"state_{s}" for s in ("new", "shown", "answering", "answered", "hidden", "merged")))


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/live", sessions_page, name="live")
    r.add_post("/live", create, name="live_create")
    r.add_get("/live/{id}", host_page, name="live_host")
    r.add_get("/live/{id}/present", present_page, name="live_present")
    r.add_get("/live/{id}/questions.json", questions_json, name="live_questions")
    r.add_get("/live/{id}/stream", stream, name="live_stream")
    r.add_post("/live/{id}/questions/{qid}/{action}", action, name="live_action")
    r.add_post("/live/{id}/end", end, name="live_end")
    r.add_get("/live/{id}/export", export, name="live_export")
    r.add_get("/live/{id}/qr", qr_poster, name="live_qr")


def _account(request: web.Request) -> StaffAccount:
    return request[ACCOUNT]


def _services(request: web.Request) -> Any:
    return request.config_dict[live_api.SERVICES]


async def _stations(request: web.Request) -> list[Any]:
    async with _services(request).uow() as uow:
        return [s for s in await uow.stations.list() if _account(request).scope.sees_station(s)]


async def sessions_page(request: web.Request, errors: list[str] | None = None,
                        form: dict[str, str] | None = None) -> web.Response:
    stations = await _stations(request)
    found = await live.sessions(_services(request), [s.code for s in stations])
    names = {s.code: s.name for s in stations}
    now = _services(request).clock.now()
    return _page(request, "live_list.html", status=400 if errors else 200, sessions=found, names=names,
                 stations=stations, now=now, errors=errors or [], form=form or {},
                 status_of=lambda s: str(s.status(now)))


def _local(value: str) -> datetime:
    """A datetime-local field (the district's time) → naive local."""
    return datetime.fromisoformat(value.strip()).replace(tzinfo=None)


async def create(request: web.Request) -> web.StreamResponse:
    form = {k: str(v) for k, v in (await request.post()).items()}
    services = _services(request)
    texts = services.texts
    try:
        if form.get("station") not in {s.code for s in await _stations(request)}:
            raise LiveInvalid([DomainError("live_unknown_station", station=form.get("station", ""))])
        try:
            starts, ends = _local(form.get("starts_at", "")), _local(form.get("ends_at", ""))
        except ValueError:
            raise LiveInvalid([DomainError("live_bad_time_form")]) from None
        codes = tuple(c for c in form.get("deputy_codes", "").replace("，", ",").replace(" ", ",").split(",") if c)
        session = await live.create_session(services, LiveSession(
            station_code=form["station"], title=form.get("title", "").strip(),
            stream_url=form.get("stream_url", "").strip(), starts_at=starts, ends_at=ends, deputy_codes=codes,
            keyword=form.get("keyword", "").strip(), created_by=_account(request).username))
    except LiveInvalid as invalid:
        return await sessions_page(request, [texts.get(e.key, **e.params) for e in invalid.errors], form)
    raise web.HTTPFound(f"/console/live/{session.id}")


async def _view(request: web.Request) -> tuple[LiveSession, list[Any], dict[str, Any]]:
    session = await live_api.session_in_scope(request, _account(request))
    found = await live.questions(_services(request), session.id or 0)
    stations = {s.code: s for s in await _stations(request)}
    now = _services(request).clock.now()
    t = _services(request).texts.get
    return session, found, {"live_texts": {k: t(f"console_live_{k}" if k.startswith("state_") else f"console_live_js_{k}") for k in JS_TEXTS}, "session": session, "station": stations.get(session.station_code),
                            "live_status": str(session.status(now)), "summary": live.summary(found),
                            "running": session.status(now) == LiveStatus.RUNNING}


async def host_page(request: web.Request) -> web.Response:
    _, _, context = await _view(request)
    return _page(request, "live_host.html", **context)


async def present_page(request: web.Request) -> web.Response:
    _, _, context = await _view(request)
    return _page(request, "live_present.html", **context)


async def questions_json(request: web.Request) -> web.Response:
    session = await live_api.session_in_scope(request, _account(request))
    found = await live.questions(_services(request), session.id or 0)
    summary = _services(request).texts.get("console_live_summary", **live.summary(found))
    return web.json_response({"items": [question_view(q) for q in found], "summary": summary},
                             headers={"Cache-Control": "no-store"})


async def stream(request: web.Request) -> web.StreamResponse:
    session = await live_api.session_in_scope(request, _account(request))
    return await live_api.event_stream(request, session.id or 0)


async def action(request: web.Request) -> web.StreamResponse:
    account = _account(request)
    session = await live_api.session_in_scope(request, account)
    form = await request.post()
    body = {k: str(form[k]) for k in ("text", "reason", "into") if form.get(k)}
    return await live_api.run_action(request, account, session, request.match_info["qid"],
                                     request.match_info["action"], body)


async def end(request: web.Request) -> web.StreamResponse:
    session = await live_api.session_in_scope(request, _account(request))
    await live.end_session(_services(request), session.id or 0, _account(request).username)
    raise web.HTTPFound(f"/console/live/{session.id}")


async def export(request: web.Request) -> web.StreamResponse:
    session, found, _ = await _view(request)
    t = _services(request).texts.get
    states = {s: t(f"console_live_state_{s}") for s in ("new", "shown", "answering", "answered", "hidden", "merged")}
    headers = [t(f"console_live_col_{c}") for c in ("id", "asked_at", "text", "state", "askers", "starred",
                                                     "answer", "answered_by", "merged_into", "hide_reason", "ticket")]
    rows = [[q.id, q.asked_at, q.text, states[str(q.state)], len(q.askers), "★" if q.starred else "", q.answer,
             q.answered_by, q.merged_into, q.hide_reason, f"#{q.ticket_number}" if q.ticket_number else ""]
            for q in found]
    summary = live.summary(found)
    rows.append([])
    rows += [[t(f"console_live_sum_{k}"), v] for k, v in summary.items()]
    stamp = session.starts_at.replace(tzinfo=LOCAL_TZ).strftime("%Y%m%d")
    return export_response("xlsx", f"{t('console_live_export_name')}-{session.title}-{stamp}", headers, rows)


async def qr_poster(request: web.Request) -> web.StreamResponse:
    """A printable A5 poster of the session's QR code (scene live:<id>), also good for the overlay."""
    from bot import posters

    session = await live_api.session_in_scope(request, _account(request))
    texts = _services(request).texts
    gateway = request.config_dict.get(live_api.GATEWAY)
    if gateway is None:
        raise web.HTTPNotFound()
    try:
        qr = await gateway.create_qrcode(session.scene)  # type: ignore[attr-defined]
        png = await asyncio.to_thread(posters.render, qr, posters.PosterText(
            heading=texts.get("console_live_poster_heading"), title=session.title,
            subtitle=f"{live.when(session.starts_at)}–{session.ends_at:%H:%M}",
            how_to=[texts.get("console_live_poster_scan"), texts.get("console_live_poster_keyword",
                                                                     keyword=session.keyword)],
            footer=texts.get("console_live_poster_footer", id=session.id)), texts)
    except Exception:  # noqa: BLE001 - WeChat or the font: staff get a Chinese page, not a stack trace
        log.exception("QR poster of live session %d failed", session.id)
        return _page(request, "message.html", status=502, title=texts.get("console_live_qr_failed"))
    return web.Response(body=png, content_type="image/png",
                        headers={"Content-Disposition": f"inline; filename=live-{session.id}.png"})
