"""One contract for the staff, audit-log and note repositories: memory, SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.core.staff import AuditEntry, StaffAccount, StaffError, StaffRole, TicketNote
from bot.core.tickets import Ticket

NOW = datetime(2026, 12, 1, 10, 0)


async def test_staff_accounts_round_trip(uow_factory) -> None:
    account = StaffAccount("li", StaffRole.TOWN, "hash", name="李梅", town="盛泽镇", created_at=NOW)
    async with uow_factory() as uow:
        await uow.staff.add(account)
        await uow.commit()
    async with uow_factory() as uow:
        with pytest.raises(StaffError):
            await uow.staff.add(account)
    async with uow_factory() as uow:
        stored = await uow.staff.get("li")
        assert stored == account
        stored.token_hash = "t" * 64
        stored.locked_until = NOW + timedelta(minutes=5)
        await uow.staff.save(stored)
        # another account without a token: "no token" must not collide
        await uow.staff.add(StaffAccount("zhao", StaffRole.DISTRICT, "hash"))
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.staff.by_token_hash("t" * 64)).username == "li"
        assert await uow.staff.by_token_hash("") is None
        assert [a.username for a in await uow.staff.list()] == ["li", "zhao"]
        assert (await uow.staff.get("li")).locked_until == NOW + timedelta(minutes=5)


async def test_audit_log_pages_newest_first_and_notes(uow_factory) -> None:
    async with uow_factory() as uow:
        for i in range(5):
            await uow.audit.add(AuditEntry(NOW + timedelta(minutes=i), "li", "note_added", f"ticket:{i}", "", "x"))
        number = (await uow.tickets.add(Ticket(0, "oid", "其他", "s", "p", "", "SZ-01", NOW))).number
        note = await uow.notes.add(TicketNote(number, NOW, "li", "已电话联系社区"))
        await uow.notes.add(TicketNote(number, NOW, "li", "第二条"))
        await uow.commit()
    async with uow_factory() as uow:
        page = await uow.audit.page(1, 2)
        assert page.total == 5 and [e.target for e in page.entries] == ["ticket:3", "ticket:2"]
        notes = await uow.notes.for_ticket(number)
        assert [n.text for n in notes] == ["已电话联系社区", "第二条"] and notes[0].id == note.id
    async with uow_factory() as uow:  # without commit: nothing stays
        await uow.audit.add(AuditEntry(NOW, "li", "x", "y"))
    async with uow_factory() as uow:
        assert (await uow.audit.page(0, 10)).total == 5
