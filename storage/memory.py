"""In-memory unit of work: every repository of bot.core.ports, for unit tests and single-process runs.

Semantics match the SQL implementation (one contract suite covers both):
- changes made inside a unit of work are staged and become visible to others only on commit;
  leaving `async with` without commit (or calling rollback) discards them;
- repositories hand out and store copies, so mutating a returned object changes nothing until save;
- ticket numbers and outbox ids come from counters that, like database sequences, are never reused
  (a rolled-back ticket still consumes its number);
- each committed ticket has a version, like the SQL row's: saving (or committing) a ticket that
  someone else committed since it was read raises ConcurrentUpdate.
"""
from __future__ import annotations

import copy
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.core.broadcasts import Broadcast, BroadcastSend
from bot.core.clock import Clock, SystemClock
from bot.core.events import Event
from bot.core.inbound import LateInbound, ProcessedInbound
from bot.core.outbound import UNDELIVERED, OutboxMessage, OutboxStatus, PushFailure
from bot.core.people import Citizen, Deputy, DutyShift, Station
from bot.core.ports import ConcurrentUpdate
from bot.core.receptions import Follow, Reception
from bot.core.tickets import FIRST_TICKET_NUMBER, Ticket, TicketBrief, TicketStatus, take_events
from storage.memory_live import attach_live_repository
from storage.memory_people import (
    BindCode,
    MemoryBindCodeRepository,
    MemoryCitizenRepository,
    MemoryDeputyRepository,
    MemoryDutyRepository,
    MemoryStationRepository,
)
from storage.memory_tables import Staged, Table
from storage.memory_staff import attach_staff_repositories
from storage.memory_receptions import (
    MemoryBroadcastRepository,
    MemoryFollowRepository,
    MemoryReceptionRepository,
    MemoryReminderRepository,
)

class MemoryDatabase:
    """The committed state shared by every unit of work of one factory."""

    def __init__(self) -> None:
        self.stations: Table[str, Station] = Table()
        self.deputies: Table[str, Deputy] = Table()
        self.duty: Table[tuple[str, str, str, Any], DutyShift] = Table()
        self.tickets: Table[int, Ticket] = Table()
        self.citizens: Table[str, Citizen] = Table()
        self.outbox: Table[int, OutboxMessage] = Table()
        self.bind_codes: Table[str, BindCode] = Table()
        self.push_failures: Table[int, PushFailure] = Table()
        self.processed_inbound: Table[str, ProcessedInbound] = Table()
        self.late_inbound: Table[str, LateInbound] = Table()
        self.receptions: Table[int, Reception] = Table()
        self.follows: Table[tuple[str, str], Follow] = Table()
        self.town_tags: Table[str, int] = Table()
        self.broadcasts: Table[int, Broadcast] = Table()
        self.broadcast_sends: Table[int, BroadcastSend] = Table()
        self.mass_budget: Table[tuple[str, str], int] = Table()
        self.reminders: Table[tuple[int, str], tuple[int, str, datetime, tuple[str, ...]]] = Table()
        self.reception_ids = itertools.count(1)
        self.ticket_versions: dict[int, int] = {}  # number -> committed version
        self.ticket_numbers = itertools.count(FIRST_TICKET_NUMBER)
        self.outbox_ids = itertools.count(1)


# --- repositories (stations, deputies, duty, citizens, bind codes: storage/memory_people.py) --------
class MemoryTicketRepository:
    def __init__(self, rows: Staged[int, Ticket], numbers: Callable[[], int], versions: dict[int, int],
                 followed_by: Callable[[str], Awaitable[Sequence[int]]]) -> None:
        self._rows = rows
        self._followed_by = followed_by  # the live repository's: tickets a citizen follows
        self._numbers = numbers
        self._versions = versions  # committed, shared by all units of work
        self._read: dict[int, int] = {}  # number -> version when first handed out here
        self.saved: set[int] = set()
        self.handed_out: list[Ticket] = []  # the unit of work collects their recorded events

    def _out(self, ticket: Ticket) -> Ticket:
        self._read.setdefault(ticket.number, self._versions.get(ticket.number, 0))
        self.handed_out.append(ticket)
        return ticket

    def check_versions(self) -> None:
        for number in self.saved:
            if self._versions.get(number, 0) != self._read.get(number, 0):
                raise ConcurrentUpdate(f"ticket #{number} changed meanwhile")

    def commit(self) -> None:
        for number in self.saved:
            self._versions[number] = self._read[number] = self._versions.get(number, 0) + 1
        self.saved.clear()

    def rollback(self) -> None:
        self.saved.clear()
        self._read.clear()
        self.handed_out.clear()

    async def add(self, ticket: Ticket) -> Ticket:
        ticket.number = self._numbers()
        self._rows.put(ticket.number, ticket.copy())
        self.saved.add(ticket.number)
        return self._out(ticket.copy())

    async def get(self, number: int) -> Ticket | None:
        ticket = self._rows.get(number)
        return self._out(ticket) if ticket else None

    async def save(self, ticket: Ticket) -> None:
        if self._rows.get(ticket.number) is None:
            raise LookupError(f"no ticket #{ticket.number}")
        self.saved.add(ticket.number)
        self.check_versions()
        self._rows.put(ticket.number, ticket.copy())

    def _list(self, found: list[Ticket]) -> list[Ticket]:
        return [self._out(t) for t in found]

    async def list_for_citizen(self, openid: str) -> Sequence[Ticket]:
        found = [t for t in self._rows.values() if t.citizen_openid == openid]
        return self._list(sorted(found, key=lambda t: t.number, reverse=True))  # newest first

    async def briefs_for_citizen(self, openid: str) -> Sequence[TicketBrief]:
        followed = set(await self._followed_by(openid))
        found = [t for t in self._rows.values() if t.citizen_openid == openid or t.number in followed]
        return [TicketBrief(t.number, t.summary, t.status) for t in sorted(found, key=lambda t: t.number, reverse=True)]

    async def list_open_for_deputy(self, deputy_code: str) -> Sequence[Ticket]:
        found = [t for t in self._rows.values() if t.deputy_code == deputy_code and t.status.is_open]
        return self._list(sorted(found, key=lambda t: t.number))  # oldest first

    async def open_counts(self, deputy_codes: Sequence[str]) -> dict[str, int]:
        counts = {code: 0 for code in deputy_codes}
        for t in self._rows.values():
            if t.deputy_code in counts and t.status.is_open:
                counts[t.deputy_code] += 1
        return counts

    async def waiting(self, station_code: str | None = None) -> Sequence[Ticket]:
        found = [
            t
            for t in self._rows.values()
            if t.status is TicketStatus.FILED
            and t.deputy_code is None
            and (station_code is None or t.station_code == station_code)
        ]
        return self._list(sorted(found, key=lambda t: (t.created_at, t.number)))

    async def awaiting_rating(self, openid: str) -> Ticket | None:
        found = [
            t
            for t in self._rows.values()
            if t.citizen_openid == openid and t.status is TicketStatus.RESOLVED and t.rating is None
        ]
        newest = max(found, key=lambda t: t.number, default=None)
        return self._out(newest) if newest else None


class MemoryOutboxRepository:
    def __init__(self, rows: Staged[int, OutboxMessage], ids: Callable[[], int], clock: Clock,
                 failures: Staged[int, PushFailure]) -> None:
        self._rows = rows
        self._ids = ids
        self._clock = clock
        self._failures = failures

    async def add(self, message: OutboxMessage) -> OutboxMessage:
        message.id = self._ids()
        if message.created_at is None:
            message.created_at = self._clock.now()
        self._rows.put(message.id, message)
        return copy.deepcopy(message)

    async def due(self, now: datetime, limit: int = 50) -> Sequence[OutboxMessage]:
        found = [
            m
            for m in self._rows.values()
            if m.status == OutboxStatus.PENDING and (m.next_attempt_at is None or m.next_attempt_at <= now)
        ]
        return sorted(found, key=lambda m: m.id or 0)[:limit]

    async def held_for(self, openid: str) -> Sequence[OutboxMessage]:
        found = [m for m in self._rows.values() if m.status == OutboxStatus.HELD and m.recipient_openid == openid]
        return sorted(found, key=lambda m: m.id or 0)

    async def next_due(self) -> datetime | None:
        times = [m.next_attempt_at for m in self._rows.values()
                 if m.status == OutboxStatus.PENDING and m.next_attempt_at is not None]
        return min(times, default=None)

    async def extend_claim(self, ids: Sequence[int], claimed_until: datetime, until: datetime) -> list[int]:
        renewed = []
        for message_id in ids:
            message = self._rows.get(message_id)
            if message and message.status == OutboxStatus.PENDING and message.next_attempt_at == claimed_until:
                self._rows.put(message_id, replace(message, next_attempt_at=until))
                renewed.append(message_id)
        return renewed

    async def save(self, message: OutboxMessage) -> None:
        if message.id is None or self._rows.get(message.id) is None:
            raise LookupError(f"no outbox message {message.id}")
        self._rows.put(message.id, replace(message, events=[]))

    async def list(self, statuses: Sequence[OutboxStatus] = UNDELIVERED) -> Sequence[OutboxMessage]:
        found = [m for m in self._rows.values() if m.status in statuses]
        return sorted(found, key=lambda m: m.id or 0)

    async def record_failure(self, failure: PushFailure) -> None:
        self._failures.put(failure.message_id, failure)

    async def failures(self, station_code: str | None = None, *, untold: bool = False) -> Sequence[PushFailure]:
        found = [f for f in self._failures.values()
                 if (station_code is None or f.station_code == station_code) and not (untold and f.told_at)]
        return sorted(found, key=lambda f: (f.failed_at, f.message_id), reverse=True)

    async def mark_told(self, message_ids: Sequence[int], at: datetime) -> None:
        for message_id in message_ids:
            failure = self._failures.get(message_id)
            if failure is not None:
                self._failures.put(message_id, replace(failure, told_at=at))


class MemoryProcessedInboundRepository:
    def __init__(self, rows: Staged[str, ProcessedInbound], table: Table[str, ProcessedInbound]) -> None:
        self._rows = rows
        self._table = table
        self._added: list[str] = []

    async def get(self, key: str) -> ProcessedInbound | None:
        return self._rows.get(key)

    async def add(self, record: ProcessedInbound) -> None:
        if self._rows.get(record.key) is not None:
            raise KeyError(f"inbound {record.key} is already recorded")
        self._rows.put(record.key, record)
        self._added.append(record.key)

    def check_unique(self) -> None:
        """At commit: another unit of work may have recorded the same key meanwhile."""
        if any(key in self._table.rows for key in self._added):
            raise KeyError("inbound already recorded by another unit of work")

    async def prune(self, before: datetime) -> int:
        old = [r.key for r in self._rows.values() if r.handled_at < before]
        for key in old:
            self._rows.delete(key)
        return len(old)

    def forget_added(self) -> None:
        self._added.clear()

    async def set_reply(self, key: str, reply: str) -> None:
        record = self._rows.get(key)
        if record is not None:
            self._rows.put(key, replace(record, reply=reply))


class MemoryLateInboundRepository:
    def __init__(self, rows: Staged[str, LateInbound]) -> None:
        self._rows = rows

    async def keep(self, entry: LateInbound) -> None:
        if self._rows.get(entry.key) is None:
            self._rows.put(entry.key, entry)

    async def due(self, now: datetime, limit: int) -> Sequence[LateInbound]:
        found = sorted((e for e in self._rows.values() if e.next_try_at <= now), key=lambda e: e.kept_at)
        return found[:limit]

    async def save(self, entry: LateInbound) -> None:
        if self._rows.get(entry.key) is not None:
            self._rows.put(entry.key, entry)

    async def forget(self, key: str) -> None:
        if self._rows.get(key) is not None:
            self._rows.delete(key)


# --- unit of work --------------------------------------------------------------------------------
class MemoryUnitOfWork:
    def __init__(self, db: MemoryDatabase, clock: Clock) -> None:
        self._db = db
        self._staged: list[Staged[Any, Any]] = []

        def stage(table: Table[Any, Any]) -> Staged[Any, Any]:
            staged: Staged[Any, Any] = Staged(table)
            self._staged.append(staged)
            return staged

        self.stations = MemoryStationRepository(stage(db.stations))
        self.deputies = MemoryDeputyRepository(stage(db.deputies))
        self.duty = MemoryDutyRepository(stage(db.duty))
        self.tickets = MemoryTicketRepository(stage(db.tickets), lambda: next(db.ticket_numbers), db.ticket_versions,
                                              lambda openid: self.live.followed_by(openid))
        self.citizens = MemoryCitizenRepository(stage(db.citizens))
        self.outbox = MemoryOutboxRepository(stage(db.outbox), lambda: next(db.outbox_ids), clock,
                                             stage(db.push_failures))
        self.bind_codes = MemoryBindCodeRepository(stage(db.bind_codes))
        attach_staff_repositories(self, db, stage)
        self.processed_inbound = MemoryProcessedInboundRepository(stage(db.processed_inbound), db.processed_inbound)
        self.late_inbound = MemoryLateInboundRepository(stage(db.late_inbound))
        self.receptions = MemoryReceptionRepository(stage(db.receptions), lambda: next(db.reception_ids))
        self.follows = MemoryFollowRepository(stage(db.follows), stage(db.town_tags))
        self.broadcasts = MemoryBroadcastRepository(stage(db.broadcasts), stage(db.broadcast_sends),
                                                    stage(db.mass_budget), lambda: next(db.reception_ids))
        self.reminders = MemoryReminderRepository(stage(db.reminders))
        attach_live_repository(self, db, stage)

    async def __aenter__(self) -> MemoryUnitOfWork:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.rollback()

    async def commit(self) -> None:
        # no await in here: the whole commit is atomic with respect to other tasks
        try:
            self.tickets.check_versions()
            self.processed_inbound.check_unique()
            self.live.check_versions()
        except (ConcurrentUpdate, KeyError):
            await self.rollback()  # as the database does: nothing of this transaction is kept
            raise
        for staged in self._staged:
            staged.commit()
        self.tickets.commit()
        self.processed_inbound.forget_added()
        self.live.forget()

    async def rollback(self) -> None:
        for staged in self._staged:
            staged.rollback()
        self.tickets.rollback()
        self.processed_inbound.forget_added()
        self.live.forget()

    def collect_new_events(self) -> list[Event]:
        return take_events(self.tickets.handed_out) + self.live.take_events()


class MemoryUnitOfWorkFactory:
    """`factory()` returns a new unit of work over the state this factory owns; `clock` dates
    outbox messages stored without a time (bot/bootstrap.py passes the app's)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.database = MemoryDatabase()
        self._clock = clock or SystemClock()

    def __call__(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.database, self._clock)

    async def dispose(self) -> None:
        return None
