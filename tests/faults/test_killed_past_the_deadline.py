"""kill -9 past the reply deadline: WeChat was answered `success` (so it never sends the message
again) while the handler of a citizen's 是 was still running. The message was kept in the database
before that answer: after the restart the replay job files the ticket, exactly once, and pushes its
number. Before, these reports were lost without a trace."""
from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from harness import Rig, ticket_number

pytestmark = pytest.mark.faults

CITIZENS = [f"oCitizen_fault_late_{i:05d}" for i in range(3)]


async def test_a_report_killed_after_its_success_answer_is_filed_once_after_the_restart(make_rig) -> None:
    rig: Rig = await make_rig(env={"ZTC_LATE_RETRY_AFTER": "1"})
    await rig.bind_deputy()
    for citizen in CITIZENS:
        await rig.walk_form(citizen)
    rig.kill()
    rig.env["ZTC_REPLY_DEADLINE"] = "0.001"  # every handler is past the deadline at once
    for citizen in CITIZENS:
        await rig.start()
        assert await rig.post(rig.text_xml(citizen, "是")) == (200, None)  # `success`
        rig.kill()  # while 是 is being handled (it takes milliseconds), or just after
    await rig.start()

    deadline = time.monotonic() + 60
    numbers: dict[str, list[int]] = {}
    while time.monotonic() < deadline:
        numbers = {c: [n for n in map(ticket_number, rig.api.sent_texts(c)) if n] for c in CITIZENS}
        if all(numbers.values()):
            break
        await asyncio.sleep(0.25)
    for citizen in CITIZENS:
        tickets = await rig.query(lambda uow, c=citizen: uow.tickets.list_for_citizen(c))
        assert len(tickets) == 1, f"{citizen}: {len(tickets)} tickets\n{rig.log_text()[-3000:]}"
        assert set(numbers[citizen]) == {tickets[0].number}, numbers[citizen]
    assert await rig.query(lambda uow: uow.late_inbound.due(datetime(2100, 1, 1), 10)) == []
