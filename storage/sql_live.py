"""SQL tables and repository of live-stream sessions, their questions and the citizens who follow a
merged question's ticket (storage/memory_live.py
has the same semantics). A question's save is an UPDATE … WHERE version = the one read: two hosts
changing one question at once cannot both win (ConcurrentUpdate for the second)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.core.events import Event
from bot.core.live import LiveQuestion, LiveSession, QuestionState, default_keyword, take_live_events
from bot.core.ports import ConcurrentUpdate
from storage.models import Base
from storage.sql_mapping import assign_changed


class LiveSessionRow(Base):
    __tablename__ = "live_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    station_code: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    stream_url: Mapped[str] = mapped_column(String(500), default="")
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime] = mapped_column(DateTime)
    deputy_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    keyword: Mapped[str] = mapped_column(String(32), index=True, default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_by: Mapped[str] = mapped_column(String(64), default="")
    filed_at: Mapped[datetime | None] = mapped_column(DateTime)


class LiveTicketFollowerRow(Base):
    """A citizen who follows a ticket filed for another asker of the same (merged) live question."""

    __tablename__ = "live_ticket_followers"

    ticket_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class LiveQuestionRow(Base):
    __tablename__ = "live_questions"
    __table_args__ = (Index("ix_live_questions_session_asker", "session_id", "asker_openid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(Integer, index=True)
    asker_openid: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(DateTime)
    askers: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16))
    starred: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into: Mapped[int | None] = mapped_column(Integer)
    hide_reason: Mapped[str] = mapped_column(String(200), default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    answered_by: Mapped[str] = mapped_column(String(64), default="")
    attachments: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    ticket_number: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)


_SESSION_FIELDS = ("station_code", "title", "stream_url", "starts_at", "ends_at", "keyword", "created_by",
                   "ended_at", "ended_by", "filed_at")
_QUESTION_FIELDS = ("session_id", "asker_openid", "text", "asked_at", "starred", "merged_into", "hide_reason",
                    "answer", "answered_at", "answered_by", "ticket_number")


def _session_fields(s: LiveSession) -> dict[str, Any]:
    return {**{f: getattr(s, f) for f in _SESSION_FIELDS}, "deputy_codes": list(s.deputy_codes)}


def _session_of(row: LiveSessionRow) -> LiveSession:
    return LiveSession(**{f: getattr(row, f) for f in _SESSION_FIELDS},
                       deputy_codes=tuple(row.deputy_codes or ()), id=row.id)


def _question_fields(q: LiveQuestion) -> dict[str, Any]:
    return {**{f: getattr(q, f) for f in _QUESTION_FIELDS}, "askers": list(q.askers), "state": str(q.state),
            "attachments": [dict(a) for a in q.attachments]}


def _question_of(row: LiveQuestionRow) -> LiveQuestion:
    return LiveQuestion(**{f: getattr(row, f) for f in _QUESTION_FIELDS}, askers=tuple(row.askers or ()),
                        state=QuestionState(row.state), attachments=tuple(dict(a) for a in row.attachments or ()),
                        id=row.id, version=row.version)


class SqlLiveRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session
        self.handed_out: list[LiveSession | LiveQuestion] = []

    def _out(self, item: Any) -> Any:
        if item is not None:
            self.handed_out.append(item)
        return item

    async def add_session(self, session: LiveSession) -> LiveSession:
        row = LiveSessionRow(**_session_fields(session))
        self._s.add(row)
        await self._s.flush()
        if not row.keyword:
            row.keyword = default_keyword(row.id)
            await self._s.flush()
        session.id, session.keyword = row.id, row.keyword
        return self._out(session)

    async def get_session(self, session_id: int, *, share_lock: bool = False) -> LiveSession | None:
        if share_lock:  # FOR SHARE on PostgreSQL; SQLite serialises writers anyway
            row = await self._s.scalar(select(LiveSessionRow).where(LiveSessionRow.id == session_id)
                                       .with_for_update(read=True).execution_options(populate_existing=True))
        else:
            row = await self._s.get(LiveSessionRow, session_id)
        return self._out(_session_of(row)) if row else None

    async def save_session(self, session: LiveSession) -> None:
        row = await self._s.get(LiveSessionRow, session.id) if session.id is not None else None
        if row is None:
            raise LookupError(f"no live session {session.id}")
        assign_changed(row, _session_fields(session))
        await self._s.flush()

    async def session_by_keyword(self, keyword: str) -> LiveSession | None:
        row = await self._s.scalar(select(LiveSessionRow).where(LiveSessionRow.keyword == keyword)
                                   .order_by(LiveSessionRow.id.desc()).limit(1))
        return self._out(_session_of(row)) if row else None

    async def sessions(self, station_codes: Sequence[str] | None = None) -> Sequence[LiveSession]:
        query = select(LiveSessionRow).order_by(LiveSessionRow.id.desc())
        if station_codes is not None:
            query = query.where(LiveSessionRow.station_code.in_(list(station_codes)))
        return [self._out(_session_of(r)) for r in await self._s.scalars(query)]

    async def due_to_end(self, now: datetime) -> Sequence[LiveSession]:
        query = select(LiveSessionRow).where(LiveSessionRow.ended_at.is_(None), LiveSessionRow.ends_at <= now)
        return [self._out(_session_of(r)) for r in await self._s.scalars(query.order_by(LiveSessionRow.id))]

    async def unfiled(self, now: datetime) -> Sequence[LiveSession]:
        query = select(LiveSessionRow).where(LiveSessionRow.filed_at.is_(None), (
            LiveSessionRow.ended_at.is_not(None)) | (LiveSessionRow.ends_at <= now))
        return [self._out(_session_of(r)) for r in await self._s.scalars(query.order_by(LiveSessionRow.id))]

    async def claim_filing(self, session_id: int, at: datetime) -> bool:
        result = await self._s.execute(
            update(LiveSessionRow).where(LiveSessionRow.id == session_id, LiveSessionRow.filed_at.is_(None))
            .values(filed_at=at).execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def add_question(self, question: LiveQuestion) -> LiveQuestion:
        row = LiveQuestionRow(**_question_fields(question), version=1)
        self._s.add(row)
        await self._s.flush()
        question.id, question.version = row.id, 1
        return self._out(question)

    async def get_question(self, question_id: int) -> LiveQuestion | None:
        row = await self._s.get(LiveQuestionRow, question_id, populate_existing=True)
        return self._out(_question_of(row)) if row else None

    async def save_question(self, question: LiveQuestion) -> None:
        result = await self._s.execute(
            update(LiveQuestionRow)
            .where(LiveQuestionRow.id == question.id, LiveQuestionRow.version == question.version)
            .values(**_question_fields(question), version=question.version + 1)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"live question {question.id} changed meanwhile")
        question.version += 1

    async def questions(self, session_id: int) -> Sequence[LiveQuestion]:
        query = select(LiveQuestionRow).where(LiveQuestionRow.session_id == session_id).order_by(LiveQuestionRow.id)
        rows = await self._s.scalars(query.execution_options(populate_existing=True))
        return [self._out(_question_of(r)) for r in rows]

    async def last_question(self, session_id: int, openid: str) -> LiveQuestion | None:
        row = await self._s.scalar(
            select(LiveQuestionRow).where(LiveQuestionRow.session_id == session_id,
                                          LiveQuestionRow.asker_openid == openid)
            .order_by(LiveQuestionRow.id.desc()).limit(1).execution_options(populate_existing=True))
        return self._out(_question_of(row)) if row else None

    async def add_followers(self, ticket_number: int, openids: Sequence[str]) -> None:
        known = set(await self.followers(ticket_number))
        for position, openid in enumerate(dict.fromkeys(openids), start=len(known)):
            if openid not in known:
                self._s.add(LiveTicketFollowerRow(ticket_number=ticket_number, openid=openid, position=position))
        await self._s.flush()

    async def followers(self, ticket_number: int) -> Sequence[str]:
        query = select(LiveTicketFollowerRow.openid).where(LiveTicketFollowerRow.ticket_number == ticket_number)
        return list(await self._s.scalars(query.order_by(LiveTicketFollowerRow.position)))

    async def followed_by(self, openid: str) -> Sequence[int]:
        query = select(LiveTicketFollowerRow.ticket_number).where(LiveTicketFollowerRow.openid == openid)
        return list(await self._s.scalars(query.order_by(LiveTicketFollowerRow.ticket_number)))

    def take_events(self) -> list[Event]:
        return take_live_events(self.handed_out)

    def forget(self) -> None:
        self.handed_out.clear()
