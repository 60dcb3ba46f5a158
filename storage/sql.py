"""SQL repositories and unit of work (SQLAlchemy 2 async): SQLite (aiosqlite) or PostgreSQL (asyncpg),
engines from storage/sql_engine.py.

Rows are mapped to the domain dataclasses on the way out (storage/sql_mapping.py), so callers hold
plain copies; nothing
changes in the database until a repository method is called and the unit of work commits."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from bot.core.clock import Clock, SystemClock
from bot.core.events import Event
from bot.core.inbound import LateInbound, ProcessedInbound, inbound_from_json, inbound_to_json
from bot.core.outbound import UNDELIVERED, OutboxMessage, OutboxStatus, PushFailure
from bot.core.ports import ConcurrentUpdate, StoreUnavailable
from bot.core.tickets import CLOSED_STATUSES, Ticket, TicketBrief, TicketStatus, take_events
from storage.models import BindCodeRow, LateInboundRow, OutboxRow, ProcessedInboundRow, PushFailureRow, TicketRow
from storage.sql_directory import DirectoryCache, DirectoryView
from storage.sql_engine import create_engine_for, is_outage
from storage.sql_mapping import (
    append_children,
    assign_changed,
    insert_for,
    message_fields,
    message_of,
    ticket_fields,
    ticket_of,
)
from storage.sql_receptions import (
    SqlBroadcastRepository,
    SqlFollowRepository,
    SqlReceptionRepository,
    SqlReminderRepository,
)
from storage.sql_live import LiveTicketFollowerRow, SqlLiveRepository  # also registers the live tables
from storage.sql_people import SqlCitizenRepository, SqlDeputyRepository, SqlDutyRepository, SqlStationRepository
from storage.sql_staff import attach_staff_repositories  # also registers the console tables


# --- repositories ----------------------------------------------------------------------------------
_OPEN = TicketRow.status.not_in([str(s) for s in CLOSED_STATUSES])


# hot statements, built once: building one costs more CPU than SQLite takes to run it (~0.3 ms)
_OPEN_COUNTS = (select(TicketRow.deputy_code, func.count())
                .where(TicketRow.deputy_code.in_(bindparam("codes", expanding=True)), _OPEN)
                .group_by(TicketRow.deputy_code))
_BRIEFS_FOR_CITIZEN = (
    select(TicketRow.number, TicketRow.summary, TicketRow.status)
    .where(or_(TicketRow.citizen_openid == bindparam("openid"), TicketRow.number.in_(
        select(LiveTicketFollowerRow.ticket_number).where(LiveTicketFollowerRow.openid == bindparam("openid")))))
    .order_by(TicketRow.number.desc())
)
_FOR_CITIZEN = select(TicketRow).where(TicketRow.citizen_openid == bindparam("openid")).order_by(TicketRow.number.desc())
_SET_REPLY = (update(ProcessedInboundRow).where(ProcessedInboundRow.key == bindparam("record_key"))
              .values(reply=bindparam("new_reply")).execution_options(synchronize_session=False))


class SqlTicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session
        # the session's identity map holds rows weakly; keeping the rows we handed out means a later
        # save() checks the version that was read, so a concurrent change is detected, not overwritten
        self._seen: dict[int, TicketRow] = {}
        self.handed_out: list[Ticket] = []  # the unit of work collects their recorded events

    def _out(self, row: TicketRow) -> Ticket:
        self._seen[row.number] = row
        ticket = ticket_of(row)
        self.handed_out.append(ticket)
        return ticket

    async def add(self, ticket: Ticket) -> Ticket:
        row = TicketRow(**ticket_fields(ticket))
        row.timeline = []
        row.attachments = []
        append_children(row, ticket)
        self._s.add(row)
        await self._s.flush()  # the database hands out the number
        self._seen[row.number] = row
        ticket.number = row.number
        added = ticket.copy()
        self.handed_out.append(added)
        return added

    async def get(self, number: int) -> Ticket | None:
        row = await self._s.get(TicketRow, number)
        return self._out(row) if row else None

    async def save(self, ticket: Ticket) -> None:
        row = self._seen.get(ticket.number) or await self._s.get(TicketRow, ticket.number)
        if row is None:
            raise LookupError(f"no ticket #{ticket.number}")
        fields = ticket_fields(ticket)
        del fields["created_at"], fields["citizen_openid"]  # fixed when filed
        assign_changed(row, fields)
        if len(ticket.timeline) > len(row.timeline) or len(ticket.attachments) > len(row.attachments):
            # a timeline entry alone is a change too: bump the version so a concurrent save notices
            flag_modified(row, "status")
        append_children(row, ticket)
        # flush now: a concurrent change (version mismatch) surfaces here
        try:
            await self._s.flush()
        except StaleDataError as error:
            raise ConcurrentUpdate(f"ticket #{ticket.number} changed meanwhile") from error

    async def _list(self, query: Any, params: dict[str, Any] | None = None) -> list[Ticket]:
        return [self._out(r) for r in await self._s.scalars(query, params)]

    async def list_for_citizen(self, openid: str) -> Sequence[Ticket]:
        return await self._list(_FOR_CITIZEN, {"openid": openid})

    async def briefs_for_citizen(self, openid: str) -> Sequence[TicketBrief]:
        rows = await self._s.execute(_BRIEFS_FOR_CITIZEN, {"openid": openid})
        return [TicketBrief(number, summary, TicketStatus(status)) for number, summary, status in rows]

    async def list_open_for_deputy(self, deputy_code: str) -> Sequence[Ticket]:
        return await self._list(
            select(TicketRow).where(TicketRow.deputy_code == deputy_code, _OPEN).order_by(TicketRow.number)
        )

    async def open_counts(self, deputy_codes: Sequence[str]) -> dict[str, int]:
        counts = {code: 0 for code in deputy_codes}
        if counts:
            rows = await self._s.execute(_OPEN_COUNTS, {"codes": list(counts)})
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


class SqlOutboxRepository:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._s = session
        self._clock = clock
        # the rows added or claimed here: the session holds them weakly, and a save would read them again
        self._rows: dict[int, OutboxRow] = {}

    def _out(self, row: OutboxRow) -> OutboxMessage:
        self._rows[row.id] = row
        return message_of(row)

    async def add(self, message: OutboxMessage) -> OutboxMessage:
        if message.created_at is None:
            message.created_at = self._clock.now()
        row = OutboxRow(created_at=message.created_at, **message_fields(message))
        self._s.add(row)
        await self._s.flush()
        message.id = row.id
        return self._out(row)

    async def due(self, now: datetime, limit: int = 50) -> Sequence[OutboxMessage]:
        query = (
            select(OutboxRow)
            .where(
                OutboxRow.status == str(OutboxStatus.PENDING),
                (OutboxRow.next_attempt_at.is_(None)) | (OutboxRow.next_attempt_at <= now),
            )
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        if self._s.bind.dialect.name == "postgresql":
            # several delivery workers: each takes rows the others are not holding
            query = query.with_for_update(skip_locked=True)
        return [self._out(r) for r in await self._s.scalars(query)]

    async def next_due(self) -> datetime | None:
        return await self._s.scalar(select(func.min(OutboxRow.next_attempt_at))
                                    .where(OutboxRow.status == str(OutboxStatus.PENDING)))

    async def extend_claim(self, ids: Sequence[int], claimed_until: datetime, until: datetime) -> list[int]:
        if not ids:
            return []
        result = await self._s.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(list(ids)), OutboxRow.status == str(OutboxStatus.PENDING),
                   OutboxRow.next_attempt_at == claimed_until)
            .values(next_attempt_at=until)
            .returning(OutboxRow.id)
            .execution_options(synchronize_session=False)
        )
        return list(result.scalars())

    async def held_for(self, openid: str) -> Sequence[OutboxMessage]:
        rows = await self._s.scalars(
            select(OutboxRow)
            .where(OutboxRow.recipient_openid == openid, OutboxRow.status == str(OutboxStatus.HELD))
            .order_by(OutboxRow.id)
        )
        return [message_of(r) for r in rows]

    async def save(self, message: OutboxMessage) -> None:
        row = None if message.id is None else self._rows.get(message.id) or await self._s.get(OutboxRow, message.id)
        if row is None:
            raise LookupError(f"no outbox message {message.id}")
        assign_changed(row, message_fields(message))

    async def list(self, statuses: Sequence[OutboxStatus] = UNDELIVERED) -> Sequence[OutboxMessage]:
        rows = await self._s.scalars(
            select(OutboxRow).where(OutboxRow.status.in_([str(s) for s in statuses])).order_by(OutboxRow.id)
        )
        return [message_of(r) for r in rows]

    async def record_failure(self, failure: PushFailure) -> None:
        # one row per message: a held message filed as unreachable may fail for good later
        values = vars(failure)
        await self._s.execute(insert_for(self._s)(PushFailureRow).values(**values).on_conflict_do_update(
            index_elements=[PushFailureRow.message_id], set_={k: v for k, v in values.items() if k != "message_id"}))

    async def failures(self, station_code: str | None = None, *, untold: bool = False) -> Sequence[PushFailure]:
        query = select(PushFailureRow).order_by(PushFailureRow.failed_at.desc(), PushFailureRow.message_id.desc())
        if station_code is not None:
            query = query.where(PushFailureRow.station_code == station_code)
        if untold:
            query = query.where(PushFailureRow.told_at.is_(None))
        return [PushFailure(**{c: getattr(r, c) for c in _FAILURE_COLUMNS}) for r in await self._s.scalars(query)]

    async def mark_told(self, message_ids: Sequence[int], at: datetime) -> None:
        if message_ids:
            await self._s.execute(update(PushFailureRow).where(PushFailureRow.message_id.in_(list(message_ids)))
                                  .values(told_at=at).execution_options(synchronize_session=False))


_FAILURE_COLUMNS = tuple(PushFailure.__dataclass_fields__)


class SqlProcessedInboundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, key: str) -> ProcessedInbound | None:
        row = await self._s.get(ProcessedInboundRow, key)
        return ProcessedInbound(row.key, row.handled_at, row.ticket_number, row.reply) if row else None

    async def add(self, record: ProcessedInbound) -> None:
        self._s.add(ProcessedInboundRow(**vars(record)))
        await self._s.flush()  # a duplicate key fails here, inside the effect's transaction

    async def set_reply(self, key: str, reply: str) -> None:
        await self._s.execute(_SET_REPLY, {"record_key": key, "new_reply": reply})

    async def prune(self, before: datetime) -> int:
        result = await self._s.execute(delete(ProcessedInboundRow).where(ProcessedInboundRow.handled_at < before)
                                       .execution_options(synchronize_session=False))
        return int(result.rowcount or 0)


class SqlLateInboundRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def keep(self, entry: LateInbound) -> None:
        await self._s.execute(
            insert_for(self._s)(LateInboundRow)
            .values(key=entry.key, inbound=inbound_to_json(entry.inbound), kept_at=entry.kept_at,
                    next_try_at=entry.next_try_at, attempts=entry.attempts)
            .on_conflict_do_nothing(index_elements=[LateInboundRow.key]))

    async def due(self, now: datetime, limit: int) -> Sequence[LateInbound]:
        query = (select(LateInboundRow).where(LateInboundRow.next_try_at <= now)
                 .order_by(LateInboundRow.kept_at).limit(limit))
        if self._s.bind.dialect.name == "postgresql":  # several workers: each takes its own
            query = query.with_for_update(skip_locked=True)
        return [LateInbound(inbound_from_json(r.inbound), r.kept_at, r.next_try_at, r.attempts)
                for r in await self._s.scalars(query)]

    async def save(self, entry: LateInbound) -> None:
        await self._s.execute(update(LateInboundRow).where(LateInboundRow.key == entry.key)
                              .values(next_try_at=entry.next_try_at, attempts=entry.attempts)
                              .execution_options(synchronize_session=False))

    async def forget(self, key: str) -> None:
        await self._s.execute(delete(LateInboundRow).where(LateInboundRow.key == key)
                              .execution_options(synchronize_session=False))


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
        created = await self._s.execute(
            insert_for(self._s)(BindCodeRow)
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
    processed_inbound: SqlProcessedInboundRepository
    late_inbound: SqlLateInboundRepository
    receptions: SqlReceptionRepository
    follows: SqlFollowRepository
    broadcasts: SqlBroadcastRepository
    reminders: SqlReminderRepository
    live: SqlLiveRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, directory: DirectoryCache) -> None:
        self._sessions = sessions
        self._clock = clock
        self._directory_cache = directory
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        session = self._session = self._sessions()
        self._directory = DirectoryView(self._directory_cache, session)
        self.stations = SqlStationRepository(session, self._directory)
        self.deputies = SqlDeputyRepository(session, self._directory)
        self.duty = SqlDutyRepository(session, self._directory)
        self.tickets = SqlTicketRepository(session)
        self.citizens = SqlCitizenRepository(session)
        self.outbox = SqlOutboxRepository(session, self._clock)
        self.bind_codes = SqlBindCodeRepository(session)
        attach_staff_repositories(self, session)
        self.processed_inbound = SqlProcessedInboundRepository(session)
        self.late_inbound = SqlLateInboundRepository(session)
        self.receptions = SqlReceptionRepository(session)
        self.follows = SqlFollowRepository(session)
        self.broadcasts = SqlBroadcastRepository(session)
        self.reminders = SqlReminderRepository(session)
        self.live = SqlLiveRepository(session)
        return self

    async def __aexit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        outage = error is not None and not isinstance(error, StoreUnavailable) and is_outage(error)
        if self._session is not None:
            session, self._session = self._session, None
            try:
                # close() rolls back whatever was not committed and hands the connection back
                await session.close()
            except Exception:
                if not outage:
                    raise
        if outage:  # callers see the port's StoreUnavailable (the webhook answers 503: WeChat retries)
            raise StoreUnavailable(f"database: {type(error).__name__}: {error}") from error

    async def commit(self) -> None:
        assert self._session is not None, "use `async with uow:`"
        try:
            await self._session.commit()
        except StaleDataError as error:
            raise ConcurrentUpdate("a ticket changed meanwhile") from error

    def collect_new_events(self) -> list[Event]:
        return take_events(self.tickets.handed_out) + self.live.take_events()

    async def rollback(self) -> None:
        assert self._session is not None, "use `async with uow:`"
        await self._session.rollback()
        # rows added in the rolled-back transaction are gone
        self.tickets._seen.clear()
        self.tickets.handed_out.clear()  # their events were never stored
        self.duty._by_station.clear()
        self.outbox._rows.clear()
        self._directory.forget()
        self.live.forget()


class SqlUnitOfWorkFactory:
    """`factory()` gives a unit of work on a new session; `await factory.dispose()` at shutdown.
    `clock` dates outbox messages stored without a time (bot/bootstrap.py passes the app's)."""

    def __init__(self, database_url: str, *, clock: Clock | None = None, **engine_kwargs: Any) -> None:
        self.engine = create_engine_for(database_url, **engine_kwargs)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._clock = clock or SystemClock()
        self._directory = DirectoryCache()

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, self._clock, self._directory)

    async def dispose(self) -> None:
        await self.engine.dispose()
