"""SQL repositories and unit of work (SQLAlchemy 2 async): SQLite (aiosqlite) or PostgreSQL (asyncpg).

Rows are mapped to the domain dataclasses on the way out, so callers hold plain copies; nothing
changes in the database until a repository method is called and the unit of work commits."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from bot.domain import (
    Attachment,
    Citizen,
    Deputy,
    DutyShift,
    OutboxMessage,
    Station,
    StationKind,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from bot.ports import SystemClock
from storage.models import (
    BindCodeRow,
    CitizenRow,
    DeputyRow,
    DutyShiftRow,
    OutboxRow,
    StationRow,
    TicketAttachmentRow,
    TicketEventRow,
    TicketRow,
)

from storage.sql_staff import attach_staff_repositories  # also registers the console tables

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_directory(url: str) -> None:
    """A SQLite file's parent directory must exist before the first connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def create_engine_for(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url`. SQLite gets WAL, a busy timeout, and BEGIN IMMEDIATE so that
    concurrent writers queue for the write lock instead of failing half-way through a transaction."""
    # a failed statement's parameters (openids, phone numbers) must not reach the logs
    kwargs.setdefault("hide_parameters", True)
    if not is_sqlite(url):
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **kwargs)

    ensure_sqlite_directory(url)
    kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    # SQLite has one writer at a time: one connection per process lets this process's transactions
    # queue in the pool (woken at once) instead of in SQLite's busy handler (which sleeps and polls).
    kwargs.setdefault("pool_size", 1)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    # every unit of work ends its transaction (commit, or rollback on close): a second ROLLBACK
    # when the pool takes the connection back is a wasted trip to the database thread
    kwargs.setdefault("pool_reset_on_return", None)
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control away from the sqlite3 module; BEGIN is emitted below
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at checkpoints, no fsync per commit
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# --- row ⇄ domain --------------------------------------------------------------------------------
def _station(row: StationRow) -> Station:
    return Station(
        code=row.code,
        name=row.name,
        kind=StationKind(row.kind),
        town=row.town,
        address=row.address,
        specialties=tuple(row.specialties or ()),
        places=tuple(row.places or ()),
    )


def _deputy(row: DeputyRow) -> Deputy:
    return Deputy(
        code=row.code,
        name=row.name,
        level=row.level,
        station_code=row.station_code,
        phone=row.phone,
        openid=row.openid,
    )


def _day_key(day: date | int) -> str:
    return day.isoformat() if isinstance(day, date) else f"w{int(day)}"


def _shift(row: DutyShiftRow) -> DutyShift:
    day: date | int = row.day_date if row.day_date is not None else int(row.weekday or 0)
    return DutyShift(row.station_code, row.deputy_code, day, row.start, row.end)


def _ticket(row: TicketRow) -> Ticket:
    return Ticket(
        number=row.number,
        citizen_openid=row.citizen_openid,
        category=row.category,
        summary=row.summary,
        place=row.place,
        details=row.details,
        station_code=row.station_code,
        created_at=row.created_at,
        status=TicketStatus(row.status),
        deputy_code=row.deputy_code,
        phone=row.phone,
        share_contact=row.share_contact,
        attachments=[Attachment(a.kind, a.media_id, a.url, a.text) for a in row.attachments],
        events=[TicketEvent(e.at, e.kind, e.actor, e.text) for e in row.events],
        rating=row.rating,
        rating_comment=row.rating_comment,
    )


def _ticket_fields(ticket: Ticket) -> dict[str, Any]:
    return {
        "citizen_openid": ticket.citizen_openid,
        "category": ticket.category,
        "summary": ticket.summary,
        "place": ticket.place,
        "details": ticket.details,
        "station_code": ticket.station_code,
        "created_at": ticket.created_at,
        "status": str(ticket.status),
        "deputy_code": ticket.deputy_code,
        "phone": ticket.phone,
        "share_contact": ticket.share_contact,
        "rating": ticket.rating,
        "rating_comment": ticket.rating_comment,
    }


def _append_children(row: TicketRow, ticket: Ticket) -> None:
    """Timelines only grow: rows beyond those stored are new."""
    for seq in range(len(row.events), len(ticket.events)):
        e = ticket.events[seq]
        row.events.append(TicketEventRow(seq=seq, at=e.at, kind=e.kind, actor=e.actor, text=e.text))
    for seq in range(len(row.attachments), len(ticket.attachments)):
        a = ticket.attachments[seq]
        row.attachments.append(
            TicketAttachmentRow(seq=seq, kind=a.kind, media_id=a.media_id, url=a.url, text=a.text)
        )


def _message(row: OutboxRow) -> OutboxMessage:
    return OutboxMessage(
        recipient_openid=row.recipient_openid,
        text=row.text,
        template_key=row.template_key,
        template_data=dict(row.template_data or {}),
        id=row.id,
        status=row.status,
        channel=row.channel,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def _message_fields(message: OutboxMessage) -> dict[str, Any]:
    return {
        "recipient_openid": message.recipient_openid,
        "text": message.text,
        "template_key": message.template_key,
        "template_data": dict(message.template_data),
        "status": message.status,
        "channel": message.channel,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at,
        "last_error": message.last_error,
        "sent_at": message.sent_at,
    }


def _assign(row: Any, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if getattr(row, name) != value:  # untouched attributes keep the row clean
            setattr(row, name, value)


# --- repositories ----------------------------------------------------------------------------------
class SqlStationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, code: str) -> Station | None:
        row = await self._s.get(StationRow, code)
        return _station(row) if row else None

    async def list(self) -> Sequence[Station]:
        rows = await self._s.scalars(select(StationRow).order_by(StationRow.code))
        return [_station(r) for r in rows]

    async def upsert(self, station: Station) -> bool:
        row = await self._s.get(StationRow, station.code)
        if row is not None and _station(row) == station:
            return False
        fields = {
            "name": station.name,
            "kind": str(station.kind),
            "town": station.town,
            "address": station.address,
            "specialties": list(station.specialties),
            "places": list(station.places),
        }
        if row is None:
            self._s.add(StationRow(code=station.code, **fields))
        else:
            _assign(row, fields)
        return True


class SqlDeputyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, code: str) -> Deputy | None:
        row = await self._s.get(DeputyRow, code)
        return _deputy(row) if row else None

    async def by_openid(self, openid: str) -> Deputy | None:
        row = await self._s.scalar(select(DeputyRow).where(DeputyRow.openid == openid))
        return _deputy(row) if row else None

    async def list(self, station_code: str | None = None) -> Sequence[Deputy]:
        query = select(DeputyRow).order_by(DeputyRow.code)
        if station_code is not None:
            query = query.where(DeputyRow.station_code == station_code)
        return [_deputy(r) for r in await self._s.scalars(query)]

    async def upsert(self, deputy: Deputy) -> bool:
        row = await self._s.get(DeputyRow, deputy.code)
        fields = {
            "name": deputy.name,
            "level": deputy.level,
            "station_code": deputy.station_code,
            "phone": deputy.phone,
        }
        if row is None:
            self._s.add(DeputyRow(code=deputy.code, openid=deputy.openid, **fields))
            return True
        if all(getattr(row, k) == v for k, v in fields.items()):
            return False
        _assign(row, fields)  # the bound openid stays
        return True

    async def bind(self, code: str, openid: str) -> None:
        if await self._s.get(DeputyRow, code) is None:
            raise LookupError(f"no deputy {code!r}")
        # one WeChat account speaks for one deputy: a re-bind moves the account (openid is unique,
        # so the old holder is cleared first, in its own statement)
        await self._s.execute(
            update(DeputyRow).where(DeputyRow.openid == openid, DeputyRow.code != code).values(openid=None)
        )
        await self._s.execute(update(DeputyRow).where(DeputyRow.code == code).values(openid=openid))


class SqlDutyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session
        # a roster import upserts hundreds of shifts: load each station's rows once, not per shift
        self._by_station: dict[str, dict[tuple[str, str, Any], DutyShiftRow]] = {}

    async def list(self, station_code: str | None = None) -> Sequence[DutyShift]:
        query = select(DutyShiftRow).order_by(
            DutyShiftRow.station_code, DutyShiftRow.deputy_code, DutyShiftRow.day_key, DutyShiftRow.start
        )
        if station_code is not None:
            query = query.where(DutyShiftRow.station_code == station_code)
        return [_shift(r) for r in await self._s.scalars(query)]

    async def _station_rows(self, station_code: str) -> dict[tuple[str, str, Any], DutyShiftRow]:
        rows = self._by_station.get(station_code)
        if rows is None:
            found = await self._s.scalars(select(DutyShiftRow).where(DutyShiftRow.station_code == station_code))
            rows = self._by_station[station_code] = {(r.deputy_code, r.day_key, r.start): r for r in found}
        return rows

    async def upsert(self, shift: DutyShift) -> bool:
        key = _day_key(shift.day)
        rows = await self._station_rows(shift.station_code)
        row = rows.get((shift.deputy_code, key, shift.start))
        if row is None:
            is_date = isinstance(shift.day, date)
            row = DutyShiftRow(
                station_code=shift.station_code,
                deputy_code=shift.deputy_code,
                day_key=key,
                day_date=shift.day if is_date else None,
                weekday=None if is_date else int(shift.day),
                start=shift.start,
                end=shift.end,
            )
            self._s.add(row)
            rows[(shift.deputy_code, key, shift.start)] = row
            return True
        if row.end == shift.end:
            return False
        row.end = shift.end
        return True


_OPEN = TicketRow.status != str(TicketStatus.RESOLVED)


class SqlTicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session
        # the session's identity map holds rows weakly; keeping the rows we handed out means a later
        # save() checks the version that was read, so a concurrent change is detected, not overwritten
        self._seen: dict[int, TicketRow] = {}

    def _out(self, row: TicketRow) -> Ticket:
        self._seen[row.number] = row
        return _ticket(row)

    async def add(self, ticket: Ticket) -> Ticket:
        row = TicketRow(**_ticket_fields(ticket))
        row.events = []
        row.attachments = []
        _append_children(row, ticket)
        self._s.add(row)
        await self._s.flush()  # the database hands out the number
        self._seen[row.number] = row
        ticket.number = row.number
        return ticket.copy()

    async def get(self, number: int) -> Ticket | None:
        row = await self._s.get(TicketRow, number)
        return self._out(row) if row else None

    async def save(self, ticket: Ticket) -> None:
        row = self._seen.get(ticket.number) or await self._s.get(TicketRow, ticket.number)
        if row is None:
            raise LookupError(f"no ticket #{ticket.number}")
        fields = _ticket_fields(ticket)
        del fields["created_at"], fields["citizen_openid"]  # fixed when filed
        _assign(row, fields)
        if len(ticket.events) > len(row.events) or len(ticket.attachments) > len(row.attachments):
            # a timeline entry alone is a change too: bump the version so a concurrent save notices
            flag_modified(row, "status")
        _append_children(row, ticket)
        # flush now: a concurrent change (version mismatch) surfaces here as StaleDataError
        await self._s.flush()

    async def _list(self, query: Any) -> list[Ticket]:
        return [self._out(r) for r in await self._s.scalars(query)]

    async def list_for_citizen(self, openid: str) -> Sequence[Ticket]:
        return await self._list(
            select(TicketRow).where(TicketRow.citizen_openid == openid).order_by(TicketRow.number.desc())
        )

    async def list_open_for_deputy(self, deputy_code: str) -> Sequence[Ticket]:
        return await self._list(
            select(TicketRow).where(TicketRow.deputy_code == deputy_code, _OPEN).order_by(TicketRow.number)
        )

    async def open_counts(self, deputy_codes: Sequence[str]) -> dict[str, int]:
        counts = {code: 0 for code in deputy_codes}
        if counts:
            rows = await self._s.execute(
                select(TicketRow.deputy_code, func.count())
                .where(TicketRow.deputy_code.in_(list(counts)), _OPEN)
                .group_by(TicketRow.deputy_code)
            )
            for code, count in rows:
                counts[code] = int(count)
        return counts

    async def waiting(self, station_code: str | None = None) -> Sequence[Ticket]:
        query = (
            select(TicketRow)
            .where(TicketRow.status == str(TicketStatus.FILED), TicketRow.deputy_code.is_(None))
            .order_by(TicketRow.created_at, TicketRow.number)
        )
        if station_code is not None:
            query = query.where(TicketRow.station_code == station_code)
        return await self._list(query)

    async def awaiting_rating(self, openid: str) -> Ticket | None:
        row = await self._s.scalar(
            select(TicketRow)
            .where(
                TicketRow.citizen_openid == openid,
                TicketRow.status == str(TicketStatus.RESOLVED),
                TicketRow.rating.is_(None),
            )
            .order_by(TicketRow.number.desc())
            .limit(1)
        )
        return self._out(row) if row else None


class SqlCitizenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, openid: str) -> Citizen | None:
        row = await self._s.get(CitizenRow, openid)
        if row is None:
            return None
        return Citizen(row.openid, row.station_code, row.subscribed)

    async def save(self, citizen: Citizen) -> None:
        fields = {
            "station_code": citizen.station_code,
            "subscribed": citizen.subscribed,
        }
        row = await self._s.get(CitizenRow, citizen.openid)
        if row is None:
            self._s.add(CitizenRow(openid=citizen.openid, **fields))
        else:
            _assign(row, fields)


class SqlOutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, message: OutboxMessage) -> OutboxMessage:
        if message.created_at is None:
            message.created_at = SystemClock().now()
        row = OutboxRow(created_at=message.created_at, **_message_fields(message))
        self._s.add(row)
        await self._s.flush()
        message.id = row.id
        return _message(row)

    async def due(self, now: datetime, limit: int = 50) -> Sequence[OutboxMessage]:
        query = (
            select(OutboxRow)
            .where(
                OutboxRow.status == "pending",
                (OutboxRow.next_attempt_at.is_(None)) | (OutboxRow.next_attempt_at <= now),
            )
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        if self._s.bind.dialect.name == "postgresql":
            # several delivery workers: each takes rows the others are not holding
            query = query.with_for_update(skip_locked=True)
        return [_message(r) for r in await self._s.scalars(query)]

    async def held_for(self, openid: str) -> Sequence[OutboxMessage]:
        rows = await self._s.scalars(
            select(OutboxRow)
            .where(OutboxRow.recipient_openid == openid, OutboxRow.status == "held")
            .order_by(OutboxRow.id)
        )
        return [_message(r) for r in rows]

    async def save(self, message: OutboxMessage) -> None:
        row = await self._s.get(OutboxRow, message.id) if message.id is not None else None
        if row is None:
            raise LookupError(f"no outbox message {message.id}")
        _assign(row, _message_fields(message))

    async def list(self, statuses: Sequence[str] = ("pending", "held", "failed")) -> Sequence[OutboxMessage]:
        rows = await self._s.scalars(
            select(OutboxRow).where(OutboxRow.status.in_(list(statuses))).order_by(OutboxRow.id)
        )
        return [_message(r) for r in rows]


class SqlBindCodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def create(self, deputy_code: str, code: str, expires_at: datetime, now: datetime) -> bool:
        values = {"deputy_code": deputy_code, "expires_at": expires_at, "used_at": None}
        # a used or expired code is taken over; a valid one never is
        reused = await self._s.execute(
            update(BindCodeRow)
            .where(BindCodeRow.code == code, BindCodeRow.used_at.is_not(None) | (BindCodeRow.expires_at <= now))
            .values(**values)
            .returning(BindCodeRow.code)
        )
        if reused.scalar_one_or_none() is not None:
            return True
        # a new code; ON CONFLICT: the code exists and is valid (or a concurrent create won)
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if self._s.bind.dialect.name == "postgresql" else sqlite.insert
        created = await self._s.execute(
            insert(BindCodeRow)
            .values(code=code, **values)
            .on_conflict_do_nothing(index_elements=[BindCodeRow.code])
            .returning(BindCodeRow.code)
        )
        return created.scalar_one_or_none() is not None

    async def consume(self, code: str, now: datetime) -> str | None:
        # one conditional UPDATE: of two concurrent consumers only one sees a row come back
        result = await self._s.execute(
            update(BindCodeRow)
            .where(BindCodeRow.code == code, BindCodeRow.used_at.is_(None), BindCodeRow.expires_at > now)
            .values(used_at=now)
            .returning(BindCodeRow.deputy_code)
        )
        return result.scalar_one_or_none()


# --- unit of work --------------------------------------------------------------------------------
class SqlUnitOfWork:
    stations: SqlStationRepository
    deputies: SqlDeputyRepository
    duty: SqlDutyRepository
    tickets: SqlTicketRepository
    citizens: SqlCitizenRepository
    outbox: SqlOutboxRepository
    bind_codes: SqlBindCodeRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        session = self._session = self._sessions()
        self.stations = SqlStationRepository(session)
        self.deputies = SqlDeputyRepository(session)
        self.duty = SqlDutyRepository(session)
        self.tickets = SqlTicketRepository(session)
        self.citizens = SqlCitizenRepository(session)
        self.outbox = SqlOutboxRepository(session)
        self.bind_codes = SqlBindCodeRepository(session)
        attach_staff_repositories(self, session)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            # close() rolls back whatever was not committed and hands the connection back
            await self._session.close()
            self._session = None

    async def commit(self) -> None:
        assert self._session is not None, "use `async with uow:`"
        await self._session.commit()

    async def rollback(self) -> None:
        assert self._session is not None, "use `async with uow:`"
        await self._session.rollback()
        # rows added in the rolled-back transaction are gone
        self.tickets._seen.clear()
        self.duty._by_station.clear()


class SqlUnitOfWorkFactory:
    """`factory()` gives a unit of work on a new session; `await factory.dispose()` at shutdown."""

    def __init__(self, database_url: str, **engine_kwargs: Any) -> None:
        self.engine = create_engine_for(database_url, **engine_kwargs)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions)

    async def dispose(self) -> None:
        await self.engine.dispose()
