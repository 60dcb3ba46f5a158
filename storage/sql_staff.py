"""SQL tables and repositories for the staff console: accounts, audit log, internal notes, and the
indexes behind the console's ticket filters (storage/console_queries.py)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.core.staff import AuditEntry, AuditPage, StaffAccount, StaffError, StaffRole, TicketNote
from storage.models import Base, TimelineRow, TicketRow


class StaffRow(Base):
    __tablename__ = "staff"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    town: Mapped[str] = mapped_column(String(100), default="")
    station: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    totp_secret: Mapped[str] = mapped_column(String(64), default="")
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(128))
    before: Mapped[str] = mapped_column(Text, default="")
    after: Mapped[str] = mapped_column(Text, default="")


class TicketNoteRow(Base):
    __tablename__ = "ticket_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)


# the console's filters and charts: by date, by category, and the first accepted/resolved event
CONSOLE_INDEXES = (
    Index("ix_tickets_created_at", TicketRow.created_at),
    Index("ix_tickets_station_created", TicketRow.station_code, TicketRow.created_at),
    Index("ix_tickets_category_created", TicketRow.category, TicketRow.created_at),
    Index("ix_ticket_events_kind_ticket", TimelineRow.kind, TimelineRow.ticket_number, TimelineRow.at),
)

_ACCOUNT_FIELDS = ("role", "name", "town", "station", "password_hash", "must_change_password",
                   "totp_secret", "failed_logins", "locked_until", "created_at")


def _account(row: StaffRow) -> StaffAccount:
    return StaffAccount(username=row.username, token_hash=row.token_hash or "",
                        **{name: getattr(row, name) for name in _ACCOUNT_FIELDS})


def _account_fields(account: StaffAccount) -> dict[str, Any]:
    fields = {name: getattr(account, name) for name in _ACCOUNT_FIELDS}
    fields["role"] = str(StaffRole(account.role))
    fields["token_hash"] = account.token_hash or None  # unique: "no token" is NULL, not ""
    return fields


class SqlStaffRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, username: str) -> StaffAccount | None:
        row = await self._s.get(StaffRow, username)
        return _account(row) if row else None

    async def by_token_hash(self, token_hash: str) -> StaffAccount | None:
        row = await self._s.scalar(select(StaffRow).where(StaffRow.token_hash == token_hash))
        return _account(row) if row else None

    async def list(self) -> Sequence[StaffAccount]:
        return [_account(r) for r in await self._s.scalars(select(StaffRow).order_by(StaffRow.username))]

    async def add(self, account: StaffAccount) -> None:
        if await self._s.get(StaffRow, account.username) is not None:
            raise StaffError("staff_exists", username=account.username)
        self._s.add(StaffRow(username=account.username, **_account_fields(account)))
        try:
            await self._s.flush()
        except IntegrityError:  # a concurrent add of the same name
            raise StaffError("staff_exists", username=account.username) from None

    async def save(self, account: StaffAccount) -> None:
        row = await self._s.get(StaffRow, account.username)
        if row is None:
            raise LookupError(f"no staff account {account.username!r}")
        for name, value in _account_fields(account).items():
            setattr(row, name, value)


class SqlAuditLogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, entry: AuditEntry) -> None:
        self._s.add(AuditRow(at=entry.at, actor=entry.actor, action=entry.action, target=entry.target,
                             before=entry.before, after=entry.after))

    async def page(self, offset: int, limit: int) -> AuditPage:
        total = await self._s.scalar(select(func.count()).select_from(AuditRow))
        rows = await self._s.scalars(
            select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).offset(offset).limit(limit))
        entries = [AuditEntry(r.at, r.actor, r.action, r.target, r.before, r.after) for r in rows]
        return AuditPage(entries, int(total or 0))


class SqlTicketNoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, note: TicketNote) -> TicketNote:
        row = TicketNoteRow(ticket_number=note.ticket_number, at=note.at, author=note.author, text=note.text)
        self._s.add(row)
        await self._s.flush()
        return TicketNote(note.ticket_number, note.at, note.author, note.text, row.id)

    async def for_ticket(self, ticket_number: int) -> Sequence[TicketNote]:
        rows = await self._s.scalars(
            select(TicketNoteRow).where(TicketNoteRow.ticket_number == ticket_number).order_by(TicketNoteRow.id))
        return [TicketNote(r.ticket_number, r.at, r.author, r.text, r.id) for r in rows]


def attach_staff_repositories(uow: Any, session: AsyncSession) -> None:
    uow.staff = SqlStaffRepository(session)
    uow.audit = SqlAuditLogRepository(session)
    uow.notes = SqlTicketNoteRepository(session)
