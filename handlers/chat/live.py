"""The live-stream scene: while a citizen is in it, their texts (and voice messages' recognised
text) are questions for the session's host, and photos go with their last question.

Joining: the session's QR code (`live:<id>` on SCAN, `qrscene_live:<id>` on a follow: `join`,
placed before the follow router), the menu's 云直播 button (`click:live`) or the session's
keyword (the scene's start router). 退出直播 leaves; the scene ends with the session.
`我的诉求`, `#1024`, `帮助` and the menu's buttons are not questions: they pass to the routers
after the scenes, which answer them as always (with the scene's reminder)."""
from __future__ import annotations

import logging
from datetime import datetime

from bot.core import keys
from bot.core.live import LiveSession, LiveStatus
from bot.core.privacy import mask_openid
from dialogues.commands import ticket_note, ticket_number
from handlers import citizens, live
from handlers.chat.router import MESSAGES, Context, Router, Scene

log = logging.getLogger(__name__)

NAME = "live"
TTL = 6 * 3600.0  # seconds after the last message; a session's end closes it earlier


def _scene_id(scene: str) -> int | None:
    kind, _, ident = scene.strip().removeprefix("qrscene_").partition(":")
    return int(ident) if kind == "live" and ident.isdigit() else None


async def _enter(ctx: Context, session: LiveSession) -> str:
    refusal = live.join_refusal(ctx.services, session)
    if refusal is not None:
        return refusal
    await ctx.enter(NAME, {"session_id": session.id, "title": session.title,
                           "ends_at": session.ends_at.isoformat(timespec="seconds")})
    log.info("%s joined live session %d", mask_openid(ctx.openid), session.id)
    if session.stream_url:
        return ctx.texts.get("live_joined", title=session.title, url=session.stream_url)
    return ctx.texts.get("live_joined_no_url", title=session.title)


async def _join_by_qr(ctx: Context) -> str | None:
    session_id = _scene_id(ctx.inbound.scene or ctx.inbound.event_key)
    if session_id is None:
        return None  # a station's QR code: the follow router's
    session = await live.get_session(ctx.services, session_id)
    if session is None:
        await citizens.bind_station_by_scene(ctx.services, ctx.openid, "")  # still a follower
        return ctx.texts.get("live_unknown")
    # the session's station is the citizen's from now on, as with a station's QR code
    await citizens.bind_station_by_scene(ctx.services, ctx.openid, f"station:{session.station_code}")
    reply = await _enter(ctx, session)
    return ctx.texts.get("citizen_welcome") + "\n" + reply if ctx.kind == "subscribe" else reply


async def _start(ctx: Context) -> str | None:
    if ctx.kind == "click:live":
        session = await _running_for(ctx)
        return await _enter(ctx, session) if session else ctx.texts.get("live_none_running")
    if ctx.state is not None and not ctx.state.expired(ctx.services.clock.now()):
        return None  # mid-form, a word that happens to be a keyword is an answer, not a join
    session = await live.session_for_keyword(ctx.services, ctx.text)
    return await _enter(ctx, session) if session is not None else None


async def _running_for(ctx: Context) -> LiveSession | None:
    """The menu button: the running session of the citizen's station, else the newest running one."""
    station = await citizens.bound_station(ctx.services, ctx.openid)
    now = ctx.services.clock.now()
    running = [s for s in await live.sessions(ctx.services) if s.status(now) == LiveStatus.RUNNING]
    mine = [s for s in running if station is not None and s.station_code == station.code]
    return (mine or running or [None])[0]


def _is_command(ctx: Context, text: str) -> bool:
    w = ctx.words
    return w.is_my_tickets(text) or w.is_help(text) or ticket_number(text) is not None or \
        ticket_note(text) is not None


async def _in_scene(ctx: Context) -> str | None:
    assert ctx.state is not None
    session_id, title = int(ctx.state.data["session_id"]), str(ctx.state.data.get("title", ""))
    text = ctx.text
    if text in ctx.texts.raw("live_leave_words"):
        await ctx.leave()
        return ctx.texts.get("live_left")
    if ctx.kind == "text" and _is_command(ctx, text):
        return None  # answered by the commands router, with the reminder
    ends_at = datetime.fromisoformat(str(ctx.state.data.get("ends_at", "9999-01-01T00:00:00")))
    if ctx.services.clock.now() >= ends_at:  # the host may end it earlier: ask() checks that too
        return await _ended(ctx, title)
    if ctx.kind == "attachment":
        return await _photo(ctx, session_id)
    if ctx.kind == "other":
        return ctx.texts.get("live_unsupported")
    refusal = live.question_refusal(ctx.services, text)
    if refusal is not None:
        return refusal
    try:
        await live.ask(ctx.services, session_id, ctx.openid, text)
    except live.SessionClosed:
        return await _ended(ctx, title)
    await ctx.save(ctx.state.data)  # renews the scene
    return ctx.texts.get("live_asked")


async def _ended(ctx: Context, title: str) -> str:
    await ctx.leave()
    return ctx.texts.get("live_left_ended", title=title)


async def _photo(ctx: Context, session_id: int) -> str:
    attachment = ctx.attachment
    if attachment is not None and attachment.kind == "voice":
        return ctx.texts.get("live_voice_unclear")  # WeChat recognised no words in it
    if attachment is None or attachment.kind != "image":
        return ctx.texts.get("live_unsupported")  # a location
    question = await live.attach_photo(ctx.services, session_id, ctx.openid, "image", attachment.media_id,
                                       attachment.url)
    if question is None:
        last = await live.last_question(ctx.services, session_id, ctx.openid)
        return ctx.texts.get("live_photo_full" if last is not None else "live_photo_no_question")
    return ctx.texts.get("live_photo_attached")


def _reminder(ctx: Context) -> str:
    return ctx.texts.get("live_reminder", title=ctx.state.data.get("title", "") if ctx.state else "")


join = Router("live-join", _join_by_qr, kinds=frozenset({"scan", "subscribe"}))
scene = Scene(NAME, _in_scene, kinds=MESSAGES, ttl=lambda services: TTL, reminder=_reminder,
              start=Router("live-start", _start, kinds=frozenset({"text", "click:live"}),
                           reads=lambda openid: (keys.LIVE_KEYWORDS,)))
