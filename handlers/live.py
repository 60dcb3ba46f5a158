"""Live-stream receptions (云直播接待): staff create a session, citizens join and ask through the
chat, the host works the queue, and when the session ends every question left unanswered (and
every starred one) becomes a ticket routed like a report. Who is told what is decided by the
event handlers (handlers/live_notify.py); these use cases only change the sessions and questions."""
from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.core import keys
from bot.core.errors import DomainError
from bot.core.events import LiveFollowUpFiled
from bot.core.live import (
    MAX_ANSWER,
    MAX_QUESTION,
    MAX_REASON,
    KEYWORD_RE,
    LiveConflict,
    LiveQuestion,
    LiveSession,
    LiveStatus,
    check_session,
)
from bot.core.ports import ConcurrentUpdate, UnitOfWork
from bot.core.privacy import mask_openid
from dialogues.words import Words
from handlers import tickets
from handlers.notify import shorten
from handlers.services import ReportDraft, Services, retry_on_conflict

log = logging.getLogger(__name__)

SCHEDULE = "schedule"  # who ended a session at its ends_at


class LiveInvalid(Exception):
    """A session or action broke rules: each DomainError names a Chinese text (config/texts/live.yaml)."""

    def __init__(self, errors: list[DomainError]) -> None:
        super().__init__([e.key for e in errors])
        self.errors = errors


def _is_chat_word(services: Services, word: str) -> bool:
    """A word the chat already answers (帮助, 我的诉求, 是, 取消, 退出直播…) cannot be a keyword."""
    w = Words.from_texts(services.texts)
    return any(check(word) for check in (w.is_yes, w.is_no, w.is_cancel, w.is_skip, w.is_edit, w.is_my_tickets,
                                         w.is_help)) or word in services.texts.raw("live_leave_words")


def when(at: datetime) -> str:
    return f"{at.month}月{at.day}日 {at:%H:%M}"


# --- sessions -----------------------------------------------------------------------------------
async def create_session(services: Services, session: LiveSession) -> LiveSession:
    now = services.clock.now()
    async with services.uow() as uow:
        stations = {s.code: s for s in await uow.stations.list()}
        deputies = {d.code for d in await uow.deputies.list()}
        errors = check_session(session, now=now, station_codes=set(stations), deputy_codes=deputies)
        if session.keyword and _is_chat_word(services, session.keyword):
            errors.append(DomainError("live_keyword_is_a_command", keyword=session.keyword))
        if session.keyword and not errors:
            taken = await uow.live.session_by_keyword(session.keyword)
            if taken is not None and taken.status(now) != LiveStatus.ENDED:
                station = stations.get(taken.station_code)
                errors.append(DomainError("live_keyword_taken", keyword=session.keyword,
                                          station=station.name if station else taken.station_code))
        if errors:
            raise LiveInvalid(errors)
        stored = await uow.live.add_session(session)
        await uow.commit()
    await services.kv.delete(keys.LIVE_KEYWORDS)
    log.info("live session %d created for %s", stored.id, stored.station_code)
    return stored


async def get_session(services: Services, session_id: int) -> LiveSession | None:
    async with services.uow() as uow:
        return await uow.live.get_session(session_id)


async def session_for_keyword(services: Services, text: str) -> LiveSession | None:
    """The session whose keyword the citizen sent (exactly, spaces ignored), if any."""
    word = "".join(text.split())
    if not KEYWORD_RE.match(word):
        return None
    session_id = (await _keywords(services)).get(word)
    return await get_session(services, session_id) if session_id is not None else None


KEYWORDS_TTL = 60.0  # seconds; creating a session forgets the cached list at once


async def _keywords(services: Services) -> dict[str, int]:
    """Every session's keyword → the newest session with it, cached in the key-value store: most
    short texts are not keywords and should not cost a database read each."""
    raw = await services.kv.get(keys.LIVE_KEYWORDS)
    if raw is not None:
        try:
            return {str(k): int(v) for k, v in json.loads(raw).items()}
        except (ValueError, AttributeError):
            pass
    async with services.uow() as uow:
        found: dict[str, int] = {}
        for session in reversed(list(await uow.live.sessions())):  # oldest first: the newest wins
            found[session.keyword] = session.id or 0
    await services.kv.set(keys.LIVE_KEYWORDS, json.dumps(found, ensure_ascii=False), ttl=KEYWORDS_TTL)
    return found


def join_refusal(services: Services, session: LiveSession) -> str | None:
    """Why this session cannot be joined now (not started / ended, with its time), else None."""
    status = session.status(services.clock.now())
    if status == LiveStatus.NOT_STARTED:
        return services.texts.get("live_not_started", title=session.title, starts=when(session.starts_at))
    if status == LiveStatus.ENDED:
        return services.texts.get("live_ended", title=session.title,
                                  ended=when(session.ended_at or session.ends_at))
    return None


# --- asking -------------------------------------------------------------------------------------
def question_refusal(services: Services, text: str) -> str | None:
    """Why this text cannot be a question (too long for one screen, nothing but emoji), else None."""
    if len(text) > MAX_QUESTION:
        return services.texts.get("live_question_too_long", count=len(text), limit=MAX_QUESTION)
    if not any(unicodedata.category(c)[0] in "LN" for c in text):
        return services.texts.get("live_question_no_words")
    return None


class SessionClosed(Exception):
    """The session is not running (any more): nothing was stored."""

    def __init__(self, session: LiveSession | None) -> None:
        super().__init__(session.id if session else None)
        self.session = session


async def ask(services: Services, session_id: int, openid: str, text: str) -> LiveQuestion:
    """Store the question (its commit also records the inbound message: a retry does not repeat it).
    Raises SessionClosed when the session is not running: read in the same transaction, so one
    message costs one transaction."""
    now = services.clock.now()
    async with services.uow() as uow:
        session = await uow.live.get_session(session_id, share_lock=True)  # an end waits for this question
        if session is None or session.status(now) != LiveStatus.RUNNING:
            raise SessionClosed(session)
        question = await uow.live.add_question(LiveQuestion(session_id, openid, text, now))
        question.asked()
        await uow.commit()
    log.info("live question %d in session %d from %s", question.id, session_id, mask_openid(openid))
    return question


async def attach_photo(services: Services, session_id: int, openid: str, kind: str, media_id: str,
                       url: str) -> LiveQuestion | None:
    """The photo goes with the citizen's last question of this session; None when there is none
    (or it has all the photos it can take)."""
    async def attach() -> LiveQuestion | None:
        async with services.uow() as uow:
            question = await uow.live.last_question(session_id, openid)
            if question is None or not question.attach(kind, media_id, url, services.clock.now()):
                return None
            await uow.live.save_question(question)
            await uow.commit()
            return question

    return await retry_on_conflict(attach, "attaching a photo to a live question")


# --- the host's actions -------------------------------------------------------------------------
@dataclass(frozen=True)
class HostAction:
    name: str  # answer | merge | hide | star | show | pin
    by: str  # staff username
    text: str = ""  # answer text, hide reason
    into: int | None = None  # merge target


def _check_action(action: HostAction) -> None:
    if action.name == "answer" and not (action.text.strip() and len(action.text) <= MAX_ANSWER):
        raise LiveInvalid([DomainError("live_bad_answer", max=MAX_ANSWER)])
    if action.name == "hide" and not (action.text.strip() and len(action.text) <= MAX_REASON):
        raise LiveInvalid([DomainError("live_bad_reason", max=MAX_REASON)])
    if action.name == "merge" and action.into is None:
        raise LiveInvalid([DomainError("live_bad_merge")])


async def act(services: Services, session_id: int, question_id: int, action: HostAction) -> LiveQuestion:
    """One host action on one question of this session. Raises LookupError (no such question in
    this session), LiveConflict (not possible on the question as it is now, e.g. another host
    answered it a moment ago), LiveInvalid (bad input)."""
    _check_action(action)

    async def run() -> LiveQuestion:
        now = services.clock.now()
        async with services.uow() as uow:
            session = await uow.live.get_session(session_id)
            question = await uow.live.get_question(question_id)
            if session is None or question is None or question.session_id != session_id:
                raise LookupError(f"no question {question_id} in live session {session_id}")
            if session.ended_at is not None and action.name != "star":
                raise LiveConflict("live_session_closed", ended=when(session.ended_at))
            await _apply(uow, session, question, action, now)
            await uow.live.save_question(question)
            await uow.commit()
            return question

    return await retry_on_conflict(run, f"live action {action.name}")


async def _apply(uow: UnitOfWork, session: LiveSession, question: LiveQuestion, action: HostAction,
                 now: datetime) -> None:
    name = action.name
    if name == "answer":
        question.give_answer(action.text.strip(), action.by, now)
    elif name == "hide":
        question.hide(action.text.strip(), now)
    elif name == "star":
        question.toggle_star(now)
    elif name == "show":
        question.show(now)
    elif name == "pin":
        for other in await uow.live.questions(session.id or 0):  # one "now answering" at a time
            if other.state == "answering" and other.id != question.id:
                other.unpin(now)
                await uow.live.save_question(other)
        question.pin(now)
    elif name == "merge":
        target = await uow.live.get_question(action.into or 0)
        if target is None or target.session_id != question.session_id:
            raise LiveConflict("live_merge_other_session")
        question.merge_into(target, now)
        await uow.live.save_question(target)
    else:
        raise LiveInvalid([DomainError("live_bad_action")])


async def sessions(services: Services, station_codes: list[str] | None = None) -> list[LiveSession]:
    async with services.uow() as uow:
        return list(await uow.live.sessions(station_codes))


async def last_question(services: Services, session_id: int, openid: str) -> LiveQuestion | None:
    async with services.uow() as uow:
        return await uow.live.last_question(session_id, openid)


async def questions(services: Services, session_id: int) -> list[LiveQuestion]:
    async with services.uow() as uow:
        return list(await uow.live.questions(session_id))


# --- the end: everything left becomes a ticket ----------------------------------------------------
async def end_session(services: Services, session_id: int, by: str) -> LiveSession:
    """Close the session (idempotent) and file what is left. Raises LookupError."""
    async with services.uow() as uow:
        session = await uow.live.get_session(session_id)
        if session is None:
            raise LookupError(f"no live session {session_id}")
        if session.end(by, services.clock.now()):
            await uow.live.save_session(session)
            await uow.commit()
    await file_follow_ups(services, session_id)
    return session


def needs_ticket(question: LiveQuestion) -> bool:
    return question.ticket_number is None and question.state != "merged" and (
        question.open or question.starred)


async def file_follow_ups(services: Services, session_id: int) -> int:
    """Each unanswered or starred question becomes a ticket (one transaction each: a question is
    filed once, whoever else files meanwhile), then each asker is told their numbers in one
    message (once: the session's filing is claimed). Returns the tickets filed here."""
    filed = 0
    for question in await questions(services, session_id):
        if needs_ticket(question) and await _file_one(services, question):
            filed += 1
    async with services.uow() as uow:
        session = await uow.live.get_session(session_id)
        if session is None or not await uow.live.claim_filing(session_id, services.clock.now()):
            return filed
        numbers: dict[str, list[int]] = {}
        for question in await uow.live.questions(session_id):
            if question.ticket_number is None or question.state == "merged":
                continue
            for openid in question.askers:
                numbers.setdefault(openid, []).append(question.ticket_number)
        session.events.append(LiveFollowUpFiled(session_id, session.title,
                                                tuple((o, tuple(n)) for o, n in numbers.items()),
                                                services.clock.now()))
        try:
            await uow.commit()
        except ConcurrentUpdate:  # another worker told them meanwhile
            return filed
    log.info("live session %d: %d follow-up tickets filed", session_id, filed)
    return filed


async def _file_one(services: Services, question: LiveQuestion) -> bool:
    parse = await services.nlu.parse(question.text)
    now = services.clock.now()
    async with services.uow() as uow:  # its station's assignments wait, no other's
        first = await uow.live.get_session(question.session_id)
    if first is None:
        return False
    async with services.kv.lock(keys.assign_lock(first.station_code)):
        async with services.uow() as uow:
            fresh = await uow.live.get_question(question.id or 0)
            session = await uow.live.get_session(question.session_id)
            if fresh is None or session is None or not needs_ticket(fresh):
                return False
            station = await uow.stations.get(session.station_code)
            details = services.texts.get("live_ticket_details", title=session.title, askers=len(fresh.askers),
                                         answer=fresh.answer or services.texts.get("live_ticket_unanswered"))
            draft = ReportDraft(citizen_openid=fresh.asker_openid, category=parse.category or "其他",
                                summary=shorten(fresh.text, 60), place=station.town if station else "",
                                details=f"{fresh.text}\n{details}", qr_station_code=session.station_code)
            ticket, assigner = await tickets.file_in(uow, services, draft, now)
            fresh.ticket_number = ticket.number
            # the other askers of a merged question follow the ticket (handlers/live_followers.py)
            await uow.live.add_followers(ticket.number, [o for o in fresh.askers if o != fresh.asker_openid])
            await uow.live.save_question(fresh)
            await uow.commit()
        await assigner.remember()
    return True


async def end_due_sessions(services: Services) -> int:
    """The job: sessions whose ends_at has come are ended; ended ones not yet filed are filed
    (a worker that died mid-filing is caught up here)."""
    now = services.clock.now()
    async with services.uow() as uow:
        due = [s.id for s in await uow.live.due_to_end(now)]
        unfiled = [s.id for s in await uow.live.unfiled(now)]
    for session_id in due:
        await end_session(services, session_id or 0, SCHEDULE)
    for session_id in unfiled:
        if session_id not in due:
            await file_follow_ups(services, session_id or 0)
    return len(due)


# --- summary --------------------------------------------------------------------------------------
def summary(session_questions: list[LiveQuestion]) -> dict[str, int]:
    count: Callable[[str], int] = lambda state: sum(1 for q in session_questions if q.state == state)
    return {
        "questions": len(session_questions),
        "askers": len({q.asker_openid for q in session_questions}),
        "answered": count("answered"),
        "merged": count("merged"),
        "hidden": count("hidden"),
        "starred": sum(1 for q in session_questions if q.starred),
        "tickets": sum(1 for q in session_questions if q.ticket_number is not None),
    }
