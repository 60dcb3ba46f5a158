"""The message bus and its unit of work: events of committed changes reach their handlers; the
pushes are stored with the change or not at all; after-commit handlers cannot undo a commit."""
from __future__ import annotations

import logging

import pytest

from bot.core.events import MessagesQueued, TicketAssigned, TicketFiled, TicketResolved
from bot.core.ports import UnitOfWork
from bot.core.outbound import OutboxMessage
from fakes import CITIZEN, DEPUTIES, draft, get_ticket, make_services, outbox, seed
from handlers.bus import BusUnitOfWorkFactory, MessageBus
from handlers.deputies import handle_deputy_message
from handlers.tickets import submit_report
from storage.memory import MemoryUnitOfWorkFactory

WANG = DEPUTIES[0]


async def test_a_new_subscriber_hears_of_changes_without_touching_the_use_case() -> None:
    services = make_services()
    await seed(services)
    bus = services.uow.bus  # type: ignore[attr-defined]
    seen: list[object] = []
    after: list[object] = []

    async def in_transaction(event: TicketFiled, uow: UnitOfWork) -> None:
        seen.append(event)
        assert await uow.tickets.get(event.number) is not None  # the same, open transaction

    bus.subscribe(TicketFiled, in_transaction)
    bus.subscribe_after_commit(TicketFiled, after.append)
    ticket = await submit_report(services, draft())
    assert seen == after == [TicketFiled(ticket.number, "LL-DC", "D001", ticket.created_at)]


async def test_a_failing_push_handler_stores_neither_the_change_nor_any_push() -> None:
    services = make_services()
    await seed(services)
    ticket = await submit_report(services, draft())
    before = await outbox(services)

    async def broken(event: TicketResolved, uow: UnitOfWork) -> None:
        raise RuntimeError("template missing")

    services.uow.bus.subscribe(TicketResolved, broken)  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        await handle_deputy_message(services, WANG, f"办结 #{ticket.number} 修好了")
    assert (await get_ticket(services, ticket.number)).status.value == "assigned"
    assert await outbox(services) == before  # the citizen's resolved notice was not kept either


async def test_after_commit_handlers_fail_without_undoing_the_commit(caplog: pytest.LogCaptureFixture) -> None:
    services = make_services()
    await seed(services)

    def broken(event: object) -> None:
        raise RuntimeError("console down")

    services.uow.bus.subscribe_after_commit(TicketFiled, broken)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="handlers.bus"):
        ticket = await submit_report(services, draft())
    assert (await get_ticket(services, ticket.number)).citizen_openid == CITIZEN
    assert services.kick_delivery.count == 1  # type: ignore[attr-defined]  # later handlers still ran
    assert "after-commit handler broken failed on TicketFiled" in caplog.text


async def test_messages_queued_is_raised_only_by_commits_that_stored_messages() -> None:
    bus = MessageBus()
    queued: list[MessagesQueued] = []
    bus.subscribe_after_commit(MessagesQueued, queued.append)
    factory = BusUnitOfWorkFactory(MemoryUnitOfWorkFactory(), bus)

    async with factory() as uow:
        await uow.outbox.add(OutboxMessage("o1", "一"))
        await uow.outbox.add(OutboxMessage("o1", "二"))
        await uow.commit()
        await uow.commit()  # nothing new
    async with factory() as uow:
        await uow.outbox.add(OutboxMessage("o1", "三"))
        await uow.rollback()
        await uow.commit()
    assert queued == [MessagesQueued(2)]


async def test_events_of_a_rolled_back_change_are_never_dispatched() -> None:
    services = make_services()
    await seed(services)
    ticket = await submit_report(services, draft(place="盛泽镇", category="其他"))  # nobody on duty
    heard: list[object] = []
    services.uow.bus.subscribe_after_commit(TicketAssigned, heard.append)  # type: ignore[attr-defined]
    async with services.uow() as uow:
        waiting = await uow.tickets.get(ticket.number)
        waiting.assign("D004", ticket.created_at)
        await uow.tickets.save(waiting)
        await uow.rollback()
        await uow.commit()
    assert heard == []
