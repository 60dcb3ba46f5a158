"""A message past the reply deadline is answered `success`, so WeChat never sends it again: when its
handler then fails (here: the user's previous message holds their lock too long), the message is
kept in the database and the replay job handles it: the report is filed once and its number pushed."""
from __future__ import annotations

import asyncio

from e2e_stack import Stack
from test_loop import filed_number, walk_form

from bot.core import keys
from bot.webhook import WEBHOOK_KEY

CITIZEN = "oCitizen_late_000000000001"


async def kept(stack: Stack) -> list:
    async with stack.bot.services.uow() as uow:
        return list(await uow.late_inbound.due(stack.clock.now(), 10))


async def tickets(stack: Stack) -> list:
    async with stack.bot.services.uow() as uow:
        return list(await uow.tickets.list_for_citizen(CITIZEN))


async def test_a_late_message_whose_handler_failed_is_handled_by_the_replay_job(stack: Stack) -> None:
    bot = stack.bot
    await walk_form(stack, CITIZEN, "我们村口的路灯坏了一个星期了")
    settings = bot.settings  # the running app reads these per message
    settings.reply_deadline, settings.user_lock_wait, settings.late_retry_after = 0.2, 0.5, 0.0

    held, release = asyncio.Event(), asyncio.Event()

    async def previous_message_still_running() -> None:
        async with bot.kv.lock(keys.user_lock(CITIZEN), timeout=5):
            held.set()
            await release.wait()

    holder = asyncio.create_task(previous_message_still_running())
    await held.wait()
    assert await stack.send(CITIZEN, "是") is None  # `success` at the deadline: WeChat will not resend
    await bot.web_app[WEBHOOK_KEY].drain(timeout=10)  # the handler gave up waiting for the lock
    release.set()
    await holder
    assert await tickets(stack) == []
    [entry] = await kept(stack)
    assert entry.inbound.text == "是" and entry.inbound.openid == CITIZEN

    assert await bot.run_job("replay_late_messages") == 1
    [ticket] = await tickets(stack)
    await stack.delivered()
    assert any(f"#{ticket.number}" in text for text in stack.pushes(CITIZEN))
    assert filed_number(stack.pushes(CITIZEN)[-1]) == ticket.number
    assert await kept(stack) == []
    assert await bot.run_job("replay_late_messages") == 0  # answered: never handled a third time
    assert len(await tickets(stack)) == 1
