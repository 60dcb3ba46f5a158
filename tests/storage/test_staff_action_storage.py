"""What staff actions store, alike in memory, SQLite and PostgreSQL: a visitor's ticket with its
reception, and a ticket closed as a duplicate (no longer open, never awaiting a rating)."""
from __future__ import annotations

from datetime import datetime

from bot.core.tickets import VISITOR, Ticket, TicketStatus, TimelineKind

AT = datetime(2026, 12, 1, 9, 0)


async def test_visitor_ticket_and_duplicate_round_trip(uow_factory) -> None:
    async with uow_factory() as uow:
        visitor = await uow.tickets.add(Ticket.file(
            citizen_openid=VISITOR, category="其他", summary="来访", place="东村", details="", station_code="S1",
            at=AT, phone="13912345678", share_contact=False, filed_by="wang", reception_id=7, deputy_code="D001"))
        dup = await uow.tickets.add(Ticket.file(
            citizen_openid="oCitizen1", category="其他", summary="重复", place="东村", details="", station_code="S1",
            at=AT, deputy_code="D001"))
        dup.close_as_duplicate(visitor.number, "wang", AT)
        await uow.tickets.save(dup)
        await uow.commit()
    async with uow_factory() as uow:
        stored = await uow.tickets.get(visitor.number)
        closed = await uow.tickets.get(dup.number)
        assert stored is not None and closed is not None
        assert (stored.reception_id, stored.from_visitor, stored.timeline[0].actor) == (7, True, "wang")
        assert closed.status is TicketStatus.CLOSED
        assert closed.timeline[-1].kind is TimelineKind.DUPLICATE and closed.timeline[-1].text == str(visitor.number)
        assert closed.revision == 3
        assert await uow.tickets.open_counts(["D001"]) == {"D001": 1}
        assert [t.number for t in await uow.tickets.list_open_for_deputy("D001")] == [visitor.number]
        assert await uow.tickets.awaiting_rating("oCitizen1") is None
