"""In-memory staff accounts, audit log and internal notes (same semantics as storage/sql_staff.py)."""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bot.core.staff import AuditEntry, AuditPage, StaffAccount, StaffError, TicketNote


class MemoryStaffRepository:
    def __init__(self, rows: Any) -> None:
        self._rows = rows

    async def get(self, username: str) -> StaffAccount | None:
        return self._rows.get(username)

    async def by_token_hash(self, token_hash: str) -> StaffAccount | None:
        return next((a for a in self._rows.values() if token_hash and a.token_hash == token_hash), None)

    async def list(self) -> Sequence[StaffAccount]:
        return sorted(self._rows.values(), key=lambda a: a.username)

    async def add(self, account: StaffAccount) -> None:
        if self._rows.get(account.username) is not None:
            raise StaffError("staff_exists", username=account.username)
        self._rows.put(account.username, account)

    async def save(self, account: StaffAccount) -> None:
        if self._rows.get(account.username) is None:
            raise LookupError(f"no staff account {account.username!r}")
        self._rows.put(account.username, account)


class MemoryAuditLogRepository:
    def __init__(self, rows: Any, ids: Callable[[], int]) -> None:
        self._rows = rows
        self._ids = ids

    async def add(self, entry: AuditEntry) -> None:
        entry_id = self._ids()
        self._rows.put(entry_id, (entry_id, entry))

    async def page(self, offset: int, limit: int) -> AuditPage:
        ordered = sorted(self._rows.values(), key=lambda row: (row[1].at, row[0]), reverse=True)
        return AuditPage([entry for _, entry in ordered[offset:offset + limit]], len(ordered))


class MemoryTicketNoteRepository:
    def __init__(self, rows: Any, ids: Callable[[], int]) -> None:
        self._rows = rows
        self._ids = ids

    async def add(self, note: TicketNote) -> TicketNote:
        stored = replace(note, id=self._ids())
        self._rows.put(stored.id, stored)
        return stored

    async def for_ticket(self, ticket_number: int) -> Sequence[TicketNote]:
        found = [n for n in self._rows.values() if n.ticket_number == ticket_number]
        return sorted(found, key=lambda n: n.id or 0)


def attach_staff_repositories(uow: Any, db: Any, stage: Callable[[Any], Any]) -> None:
    """Adds the staff tables to `db` on first use and the repositories to `uow`."""
    from storage.memory_tables import Table

    if not hasattr(db, "staff"):
        db.staff, db.audit, db.notes = Table(), Table(), Table()
        db.audit_ids, db.note_ids = itertools.count(1), itertools.count(1)
    uow.staff = MemoryStaffRepository(stage(db.staff))
    uow.audit = MemoryAuditLogRepository(stage(db.audit), lambda: next(db.audit_ids))
    uow.notes = MemoryTicketNoteRepository(stage(db.notes), lambda: next(db.note_ids))
