"""The live-stream sessions in the JSON API (/api/v1/live-sessions…): create, the queue, the host's
actions, end, and the queue's updates as Server-Sent Events (from the LiveFeed: Redis pub/sub, so
a host on any worker sees every update). Scoped like every API route: a session of a station
outside the token's scope is 404, as one that does not exist.

The use cases need the bot's Services (NLU, key-value store): bot/bootstrap.py puts them on the
web application (`SERVICES`, `FEED`); sub-applications read them through `request.config_dict`."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.console.common import ACCOUNT, DEPS
from bot.core.clock import LOCAL_TZ
from bot.core.errors import DomainError
from bot.core.live import LiveConflict, LiveQuestion, LiveSession, question_view, similar_questions
from bot.core.ports import LiveFeed
from bot.core.staff import StaffAccount
from handlers import live
from handlers.live import HostAction, LiveInvalid
from handlers.services import Services

SERVICES = web.AppKey("live_services", Services)
FEED = web.AppKey("live_feed", LiveFeed)  # type: ignore[type-abstract]
GATEWAY = web.AppKey("live_gateway", object)  # the WeChat gateway: the sessions' QR codes
HEARTBEAT = 15.0  # seconds: a comment line keeps proxies from closing an idle stream
ACTIONS = ("answer", "merge", "hide", "star", "show", "pin")


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/live-sessions", create)
    r.add_get("/live-sessions", list_sessions)
    r.add_get("/live-sessions/{id}", get_one)
    r.add_get("/live-sessions/{id}/questions", list_questions)
    for action in ACTIONS:  # one route each: the OpenAPI document lists each
        r.add_post(f"/live-sessions/{{id}}/questions/{{qid}}/{action}", question_action)
    r.add_post("/live-sessions/{id}/end", end)
    r.add_get("/live-sessions/{id}/stream", stream)


def _services(request: web.Request) -> Services:
    return request.config_dict[SERVICES]


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def refusal(request: web.Request, status: int, code: str, errors: list[DomainError]) -> web.Response:
    texts = request.config_dict[DEPS].texts if DEPS in request.config_dict else _services(request).texts
    messages = [texts.get(e.key, **e.params) for e in errors]
    return _json({"error": code, "message": "；".join(messages), "errors": [e.key for e in errors]}, status)


def _iso(value: datetime | None) -> str | None:
    return value.replace(tzinfo=LOCAL_TZ).isoformat() if value else None


def _local(value: Any) -> datetime:
    """ISO 8601 with an offset → naive local time; anything else raises ValueError."""
    at = datetime.fromisoformat(str(value))
    if at.tzinfo is None:
        raise ValueError("no offset")
    return at.astimezone(LOCAL_TZ).replace(tzinfo=None)


def session_item(session: LiveSession, now: datetime) -> dict[str, Any]:
    return {"id": session.id, "station": session.station_code, "title": session.title,
            "stream_url": session.stream_url, "starts_at": _iso(session.starts_at), "ends_at": _iso(session.ends_at),
            "deputy_codes": list(session.deputy_codes), "keyword": session.keyword, "qr_scene": session.scene,
            "status": str(session.status(now)), "ended_at": _iso(session.ended_at)}


def question_item(question: LiveQuestion, others: list[LiveQuestion]) -> dict[str, Any]:
    return {**question_view(question),
            "similar": [{"id": i, "score": s} for i, s in similar_questions(question, others)]}


async def session_in_scope(request: web.Request, account: StaffAccount) -> LiveSession:
    """The session of the path, or 404 (missing, or a station outside the account's scope)."""
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 12:
        raise web.HTTPNotFound()
    services = _services(request)
    async with services.uow() as uow:
        session = await uow.live.get_session(int(text))
        station = await uow.stations.get(session.station_code) if session else None
    if session is None or not account.scope.sees_station(station):
        raise web.HTTPNotFound()
    return session


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise LiveInvalid([DomainError("live_bad_body")])
    return body


async def create(request: web.Request) -> web.Response:
    account: StaffAccount = request[ACCOUNT]
    services = _services(request)
    try:
        body = await _body(request)
        try:
            starts, ends = _local(body.get("starts_at")), _local(body.get("ends_at"))
        except (TypeError, ValueError):
            raise LiveInvalid([DomainError("live_bad_time")]) from None
        async with services.uow() as uow:
            station = await uow.stations.get(str(body.get("station", "")))
        if station is not None and not account.scope.sees_station(station):
            raise LiveInvalid([DomainError("live_unknown_station", station=body.get("station"))])
        codes = body.get("deputy_codes") or []
        if not isinstance(codes, list):
            raise LiveInvalid([DomainError("live_unknown_deputy", deputy=str(codes))])
        session = await live.create_session(services, LiveSession(
            station_code=str(body.get("station", "")), title=str(body.get("title", "")).strip(),
            stream_url=str(body.get("stream_url", "") or "").strip(), starts_at=starts, ends_at=ends,
            deputy_codes=tuple(str(c) for c in codes), keyword=str(body.get("keyword", "") or "").strip(),
            created_by=account.username))
    except LiveInvalid as invalid:
        return refusal(request, 400, "invalid", invalid.errors)
    return _json(session_item(session, services.clock.now()), 201)


async def list_sessions(request: web.Request) -> web.Response:
    account: StaffAccount = request[ACCOUNT]
    services = _services(request)
    async with services.uow() as uow:
        codes = [s.code for s in await uow.stations.list() if account.scope.sees_station(s)]
        found = await uow.live.sessions(codes)
    now = services.clock.now()
    return _json({"items": [session_item(s, now) for s in found], "total": len(found)})


async def get_one(request: web.Request) -> web.Response:
    session = await session_in_scope(request, request[ACCOUNT])
    services = _services(request)
    return _json({**session_item(session, services.clock.now()),
                  "summary": live.summary(await live.questions(services, session.id or 0))})


async def list_questions(request: web.Request) -> web.Response:
    session = await session_in_scope(request, request[ACCOUNT])
    found = await live.questions(_services(request), session.id or 0)
    return _json({"items": [question_item(q, found) for q in found], "total": len(found)})


async def question_action(request: web.Request) -> web.Response:
    account: StaffAccount = request[ACCOUNT]
    return await run_action(request, account, await session_in_scope(request, account),
                            request.match_info["qid"], request.path.rsplit("/", 1)[-1], await _optional_body(request))


async def _optional_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return {"_bad": True}
    return body if isinstance(body, dict) else {"_bad": True}


async def run_action(request: web.Request, account: StaffAccount, session: LiveSession, qid: str, name: str,
                     body: dict[str, Any]) -> web.Response:
    """One host action (the API and the console page share it)."""
    if name not in ACTIONS or not qid.isdigit() or len(qid) > 12:
        raise web.HTTPNotFound()
    into = body.get("into")
    text = body.get("text") if name == "answer" else body.get("reason", "")
    try:
        if body.get("_bad"):
            raise LiveInvalid([DomainError("live_bad_body")])
        if name == "merge" and not (isinstance(into, int) or (isinstance(into, str) and into.isdigit())):
            raise LiveInvalid([DomainError("live_bad_merge")])
        action = HostAction(name, account.username, text=str(text or ""), into=int(into) if into else None)
        question = await live.act(_services(request), session.id or 0, int(qid), action)
    except LiveInvalid as invalid:
        return refusal(request, 400, "invalid", invalid.errors)
    except LiveConflict as conflict:
        return refusal(request, 409, "conflict", [conflict])
    except LookupError:
        raise web.HTTPNotFound() from None
    return _json(question_view(question))


async def end(request: web.Request) -> web.Response:
    account: StaffAccount = request[ACCOUNT]
    session = await session_in_scope(request, account)
    services = _services(request)
    ended = await live.end_session(services, session.id or 0, account.username)
    return _json({**session_item(ended, services.clock.now()),
                  "summary": live.summary(await live.questions(services, session.id or 0))})


async def stream(request: web.Request) -> web.StreamResponse:
    session = await session_in_scope(request, request[ACCOUNT])
    return await event_stream(request, session.id or 0)


async def event_stream(request: web.Request, session_id: int) -> web.StreamResponse:
    """text/event-stream: one `question` event per new or changed question, `ended` at the end."""
    feed = request.config_dict[FEED]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    async with feed.listen(session_id) as updates:
        await response.prepare(request)
        await response.write(b": live\n\n")
        while True:
            payload = await updates.next(HEARTBEAT)
            if payload is None:
                await response.write(b": keep-alive\n\n")
                continue
            kind = json.loads(payload).get("type", "question")
            await response.write(f"event: {kind}\ndata: {payload}\n\n".encode())
