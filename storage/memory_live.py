"""In-memory live sessions and questions (the semantics of storage/sql_live.py; the contract suite
runs both)."""
from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bot.core.events import Event
from bot.core.live import LiveQuestion, LiveSession, default_keyword, take_live_events
from bot.core.ports import ConcurrentUpdate


class MemoryLiveRepository:
    def __init__(self, sessions: Any, questions: Any, committed: Any, ids: Callable[[], int],
                 followers: Any) -> None:
        self._sessions = sessions
        self._followers = followers  # ticket number -> (ticket number, the openids following it)
        self._questions = questions
        self._committed = committed  # the questions table: versions as other units of work committed them
        self._ids = ids
        self._read: dict[int, int] = {}  # question id -> version saved over
        self.handed_out: list[LiveSession | LiveQuestion] = []
        self._claims: list[int] = []  # sessions whose filing this unit of work claimed
        self._committed_sessions = getattr(sessions, "_table", None)

    def _out(self, item: Any) -> Any:
        if item is not None:
            self.handed_out.append(item)
        return item

    async def add_session(self, session: LiveSession) -> LiveSession:
        session.id = self._ids()
        session.keyword = session.keyword or default_keyword(session.id)
        self._sessions.put(session.id, _plain(session))
        return self._out(copy.copy(session))

    async def get_session(self, session_id: int, *, share_lock: bool = False) -> LiveSession | None:
        return self._out(self._sessions.get(session_id))

    async def save_session(self, session: LiveSession) -> None:
        if session.id is None or self._sessions.get(session.id) is None:
            raise LookupError(f"no live session {session.id}")
        self._sessions.put(session.id, _plain(session))

    async def session_by_keyword(self, keyword: str) -> LiveSession | None:
        found = [s for s in self._sessions.values() if s.keyword == keyword]
        return self._out(max(found, key=lambda s: s.id or 0, default=None))

    async def sessions(self, station_codes: Sequence[str] | None = None) -> Sequence[LiveSession]:
        found = [s for s in self._sessions.values() if station_codes is None or s.station_code in station_codes]
        return [self._out(s) for s in sorted(found, key=lambda s: s.id or 0, reverse=True)]

    async def due_to_end(self, now: datetime) -> Sequence[LiveSession]:
        found = [s for s in self._sessions.values() if s.ended_at is None and s.ends_at <= now]
        return [self._out(s) for s in sorted(found, key=lambda s: s.id or 0)]

    async def unfiled(self, now: datetime) -> Sequence[LiveSession]:
        found = [s for s in self._sessions.values() if s.filed_at is None and (s.ended_at or s.ends_at <= now)]
        return [self._out(s) for s in sorted(found, key=lambda s: s.id or 0)]

    async def claim_filing(self, session_id: int, at: datetime) -> bool:
        session = self._sessions.get(session_id)
        if session is None or session.filed_at is not None:
            return False
        session.filed_at = at
        self._sessions.put(session_id, session)
        self._claims.append(session_id)
        return True

    async def add_question(self, question: LiveQuestion) -> LiveQuestion:
        question.id, question.version = self._ids(), 1
        self._questions.put(question.id, _plain(question))
        self._read[question.id] = 0
        return self._out(question)

    async def get_question(self, question_id: int) -> LiveQuestion | None:
        return self._out(self._questions.get(question_id))

    async def save_question(self, question: LiveQuestion) -> None:
        current = self._questions.get(question.id) if question.id is not None else None
        if current is None:
            raise LookupError(f"no live question {question.id}")
        if current.version != question.version:
            raise ConcurrentUpdate(f"live question {question.id} changed meanwhile")
        self._read.setdefault(question.id, question.version)  # type: ignore[arg-type]
        question.version += 1
        self._questions.put(question.id, _plain(question))

    async def questions(self, session_id: int) -> Sequence[LiveQuestion]:
        found = [q for q in self._questions.values() if q.session_id == session_id]
        return [self._out(q) for q in sorted(found, key=lambda q: q.id or 0)]

    async def last_question(self, session_id: int, openid: str) -> LiveQuestion | None:
        found = [q for q in self._questions.values() if q.session_id == session_id and q.asker_openid == openid]
        return self._out(max(found, key=lambda q: q.id or 0, default=None))

    async def add_followers(self, ticket_number: int, openids: Sequence[str]) -> None:
        known = await self.followers(ticket_number)
        self._followers.put(ticket_number, (ticket_number, tuple(dict.fromkeys((*known, *openids)))))

    async def followers(self, ticket_number: int) -> Sequence[str]:
        return list((self._followers.get(ticket_number) or (0, ()))[1])

    async def followed_by(self, openid: str) -> Sequence[int]:
        return sorted(number for number, openids in self._followers.values() if openid in openids)

    def check_versions(self) -> None:
        """At commit: another unit of work may have committed a question we saved."""
        for question_id, version in self._read.items():
            committed = self._committed.rows.get(question_id)
            if (committed.version if committed is not None else 0) != version:
                raise ConcurrentUpdate(f"live question {question_id} changed meanwhile")
        for session_id in self._claims:
            committed = self._committed_sessions.rows.get(session_id) if self._committed_sessions else None
            if committed is not None and committed.filed_at is not None:
                raise ConcurrentUpdate(f"live session {session_id} filed meanwhile")

    def forget(self) -> None:
        """After a commit or rollback: nothing read here is pending any more."""
        self._read.clear()
        self._claims.clear()
        self.handed_out.clear()

    def take_events(self) -> list[Event]:
        return take_live_events(self.handed_out)


def _plain(item: Any) -> Any:
    stored = copy.copy(item)
    stored.events = []
    return stored


def attach_live_repository(uow: Any, db: Any, stage: Callable[[Any], Any]) -> None:
    """Adds the live tables to `db` on first use and the repository to `uow`."""
    from storage.memory_tables import Table

    if not hasattr(db, "live_sessions"):
        db.live_sessions, db.live_questions, db.live_ids = Table(), Table(), itertools.count(1)
        db.live_followers = Table()
    uow.live = MemoryLiveRepository(stage(db.live_sessions), stage(db.live_questions), db.live_questions,
                                    lambda: next(db.live_ids), stage(db.live_followers))
