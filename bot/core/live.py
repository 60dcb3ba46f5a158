"""Live-stream receptions (云直播接待): a session streamed by a station's deputies, the questions
citizens send through the chat while it runs, and what the host does with them. Pure: the
standard library and bot.core only.

A question's life: new → shown (approved) → answering (pinned "now answering") → answered; or
hidden (with a reason), or merged into another question (its askers join that one's). Starring
is a flag beside the state: starred questions are followed up as tickets even when answered.

All datetimes are naive, in the district's local time (bot/core/clock.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.core.errors import DomainError
from bot.core.events import (
    Event,
    LiveQuestionAnswered,
    LiveQuestionAsked,
    LiveQuestionChanged,
    LiveQuestionHidden,
    LiveSessionEnded,
)

MAX_TITLE = 100
MAX_URL = 500
# WeChat takes up to 2048 bytes of text in one message; a question is one screen on a projector
MAX_QUESTION = 300
MAX_ANSWER = 500
MAX_REASON = 100
MAX_ATTACHMENTS = 9  # WeChat's nine-photo grid
KEYWORD_RE = re.compile(r"^[\u4e00-\u9fffA-Za-z0-9]{2,12}$")


class LiveStatus(StrEnum):
    NOT_STARTED = "not_started"
    RUNNING = "running"
    ENDED = "ended"


class QuestionState(StrEnum):
    NEW = "new"
    SHOWN = "shown"
    ANSWERING = "answering"
    ANSWERED = "answered"
    HIDDEN = "hidden"
    MERGED = "merged"


class LiveConflict(DomainError):
    """A host action that cannot be done on the question as it is now (answered by another host,
    merged away…): the host is told why; nothing changed."""


@dataclass
class LiveSession:
    station_code: str
    title: str
    stream_url: str
    starts_at: datetime
    ends_at: datetime
    deputy_codes: tuple[str, ...] = ()
    keyword: str = ""  # what citizens may send instead of scanning ("" until the id is known)
    created_by: str = ""
    ended_at: datetime | None = None
    ended_by: str = ""  # a staff username, or "schedule" (the job at ends_at)
    filed_at: datetime | None = None  # when the follow-up tickets' notices were stored
    id: int | None = None
    events: list[Event] = field(default_factory=list, compare=False, repr=False)

    def status(self, now: datetime) -> LiveStatus:
        if self.ended_at is not None or now >= self.ends_at:
            return LiveStatus.ENDED
        return LiveStatus.NOT_STARTED if now < self.starts_at else LiveStatus.RUNNING

    @property
    def scene(self) -> str:
        """The QR code's scene string (WeChat adds qrscene_ on a follow)."""
        return f"live:{self.id}"

    def end(self, by: str, at: datetime) -> bool:
        """Close the session (by the host or at ends_at); False when it was already closed."""
        if self.ended_at is not None:
            return False
        self.ended_at, self.ended_by = at, by
        assert self.id is not None, "a stored session"
        self.events.append(LiveSessionEnded(self.id, self.station_code, at))
        return True


def check_session(session: LiveSession, *, now: datetime, station_codes: set[str],
                  deputy_codes: set[str]) -> list[DomainError]:
    """Every broken rule of a new session (empty: it may be stored)."""
    errors: list[DomainError] = []
    if session.station_code not in station_codes:
        errors.append(DomainError("live_unknown_station", station=session.station_code))
    for code in session.deputy_codes:
        if code not in deputy_codes:
            errors.append(DomainError("live_unknown_deputy", deputy=code))
    if not session.title.strip() or len(session.title) > MAX_TITLE:
        errors.append(DomainError("live_bad_title", max=MAX_TITLE))
    if len(session.stream_url) > MAX_URL or (
            session.stream_url and not session.stream_url.startswith(("http://", "https://"))):
        errors.append(DomainError("live_bad_url"))
    if not session.starts_at < session.ends_at:
        errors.append(DomainError("live_end_before_start"))
    elif session.ends_at <= now:
        errors.append(DomainError("live_in_past"))
    if session.keyword and not KEYWORD_RE.match(session.keyword):
        errors.append(DomainError("live_bad_keyword"))
    return errors


def default_keyword(session_id: int) -> str:
    return f"直播{session_id}"


@dataclass
class LiveQuestion:
    session_id: int
    asker_openid: str
    text: str
    asked_at: datetime
    askers: tuple[str, ...] = ()  # everyone whose question this is (itself and those merged in)
    state: QuestionState = QuestionState.NEW
    starred: bool = False
    merged_into: int | None = None
    hide_reason: str = ""
    answer: str = ""
    answered_at: datetime | None = None
    answered_by: str = ""
    attachments: tuple[dict[str, str], ...] = ()  # {"kind", "media_id", "url"}
    ticket_number: int | None = None  # the ticket it became after the session
    id: int | None = None
    version: int = 0  # optimistic lock, kept by the repositories
    events: list[Event] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.askers:
            self.askers = (self.asker_openid,)

    @property
    def open(self) -> bool:
        """Still waiting for an answer (and not folded into another question)."""
        return self.state not in (QuestionState.ANSWERED, QuestionState.MERGED)

    def asked(self) -> None:
        """Record that this (just stored) question was asked."""
        assert self.id is not None
        self.events.append(LiveQuestionAsked(self.session_id, self.id, self.asker_openid, self.asked_at))
        self._changed(self.asked_at)

    def attach(self, kind: str, media_id: str, url: str, at: datetime) -> bool:
        if len(self.attachments) >= MAX_ATTACHMENTS:
            return False
        self.attachments = (*self.attachments, {"kind": kind, "media_id": media_id, "url": url})
        self._changed(at)
        return True

    def show(self, at: datetime) -> None:
        self._not_closed()
        self.state = QuestionState.SHOWN
        self._changed(at)

    def pin(self, at: datetime) -> None:
        self._not_closed()
        self.state = QuestionState.ANSWERING
        self._changed(at)

    def unpin(self, at: datetime) -> None:
        if self.state == QuestionState.ANSWERING:
            self.state = QuestionState.SHOWN
            self._changed(at)

    def give_answer(self, text: str, by: str, at: datetime) -> None:
        self._not_closed()
        self.state, self.answer, self.answered_by, self.answered_at = QuestionState.ANSWERED, text, by, at
        assert self.id is not None
        self.events.append(LiveQuestionAnswered(self.session_id, self.id, self.askers, text, at))
        self._changed(at)

    def hide(self, reason: str, at: datetime) -> None:
        self._not_closed()
        first = self.state != QuestionState.HIDDEN
        self.state, self.hide_reason = QuestionState.HIDDEN, reason
        if first:
            assert self.id is not None
            self.events.append(LiveQuestionHidden(self.session_id, self.id, self.askers, reason, at))
        self._changed(at)

    def toggle_star(self, at: datetime) -> None:
        if self.state == QuestionState.MERGED:
            raise LiveConflict("live_question_merged", into=self.merged_into)
        self.starred = not self.starred
        self._changed(at)

    def merge_into(self, target: LiveQuestion, at: datetime) -> None:
        """This question is the same as `target`: its askers are asked for there."""
        if target.id == self.id or target.session_id != self.session_id:
            raise LiveConflict("live_merge_self")
        self._not_closed()
        if target.state == QuestionState.MERGED:
            raise LiveConflict("live_question_merged", into=target.merged_into)
        self.state, self.merged_into = QuestionState.MERGED, target.id
        target.askers = tuple(dict.fromkeys((*target.askers, *self.askers)))
        target.starred = target.starred or self.starred
        self._changed(at)
        target._changed(at)

    def _not_closed(self) -> None:
        if self.state == QuestionState.ANSWERED:
            raise LiveConflict("live_already_answered", by=self.answered_by or "-",
                               at=f"{self.answered_at:%H:%M:%S}" if self.answered_at else "")
        if self.state == QuestionState.MERGED:
            raise LiveConflict("live_question_merged", into=self.merged_into)

    def _changed(self, at: datetime) -> None:
        assert self.id is not None
        self.events.append(LiveQuestionChanged(self.session_id, self.id, question_view(self), at))


def question_view(q: LiveQuestion) -> dict[str, object]:
    """What the host's queue (API, stream) shows of a question: never the askers' openids."""
    return {
        "id": q.id, "session_id": q.session_id, "text": q.text, "state": str(q.state),
        "askers": len(q.askers), "starred": q.starred, "merged_into": q.merged_into,
        "hide_reason": q.hide_reason, "answer": q.answer, "answered_by": q.answered_by,
        "asked_at": q.asked_at.isoformat(timespec="seconds"),
        "photos": len(q.attachments), "ticket_number": q.ticket_number,
    }


def take_live_events(items: list[LiveSession | LiveQuestion]) -> list[Event]:
    events: list[Event] = []
    for item in items:
        events += item.events
        item.events.clear()
    return events


# --- similar questions -------------------------------------------------------------------------
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def _grams(text: str) -> set[str]:
    """Character bigrams of the text without spaces and punctuation (Chinese has no words to split)."""
    text = _PUNCT.sub("", text.lower())
    return {text[i:i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' character bigrams, 0..1."""
    return _jaccard(_grams(a), _grams(b))


def _jaccard(ga: set[str], gb: set[str]) -> float:
    return len(ga & gb) / len(ga | gb) if ga and gb else 0.0


SIMILAR_MIN = 0.35


def similar_questions(question: LiveQuestion, others: list[LiveQuestion], limit: int = 3) -> list[tuple[int, float]]:
    """(id, score) of the open questions most like this one, best first."""
    grams = _grams(question.text)
    scored = []
    for other in others:
        if other.id == question.id or not other.open or other.id is None:
            continue
        score = _jaccard(grams, _grams(other.text))
        if score >= SIMILAR_MIN:
            scored.append((other.id, round(score, 2)))
    return sorted(scored, key=lambda s: (-s[1], s[0]))[:limit]
