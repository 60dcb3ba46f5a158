"""kill -9 in the report loop: a citizen at the confirm step posts 是, the server is killed 5–50 ms
later and started again, WeChat retries the same MsgId. The ticket is filed exactly once and the
citizen gets its number (from the reply, the retry, or the record of the first handling)."""
from __future__ import annotations

import asyncio
import time

import pytest
from harness import Rig, ticket_number

pytestmark = pytest.mark.faults

KILL_AFTER_MS = (5, 20, 50, 120)
AFTER_THE_COMMIT = None  # a kill point of its own: as soon as the ticket is in the database


async def retry_until_answered(rig: Rig, xml: str, citizen: str, within: float = 20.0) -> str:
    """WeChat's retries of one message until the citizen has an answer: the passive reply, or a
    push when the handling went past the reply deadline (waiting out the dead process's locks).
    A retry is answered `success` (None) while the dead owner's lease lasts."""
    pushed_before = len(rig.api.sent_texts(citizen))
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status, reply = await rig.post(xml)
        if status == 200 and reply:
            return reply
        pushed = [t for t in rig.api.sent_texts(citizen)[pushed_before:] if ticket_number(t)]
        if pushed:
            return pushed[-1]
        await asyncio.sleep(0.5)
    raise AssertionError("the retried message was never answered")


async def test_killed_right_after_the_confirm_files_the_ticket_exactly_once(rig: Rig) -> None:
    await rig.bind_deputy()
    for i, delay_ms in enumerate((*KILL_AFTER_MS, AFTER_THE_COMMIT)):
        citizen = f"oCitizen_fault_kill_{i:05d}"
        await rig.walk_form(citizen)
        confirm = rig.text_xml(citizen, "是")
        post = asyncio.ensure_future(rig.post(confirm))
        if delay_ms is AFTER_THE_COMMIT:
            while not await rig.query(lambda uow, c=citizen: uow.tickets.list_for_citizen(c)):
                await asyncio.sleep(0.002)
        else:
            await asyncio.sleep(delay_ms / 1000)
        rig.kill()
        answered = await asyncio.gather(post, return_exceptions=True)
        await rig.start()
        first = answered[0] if not isinstance(answered[0], BaseException) else None
        reply = first[1] if first and first[1] else await retry_until_answered(rig, confirm, citizen)
        filed = await rig.query(lambda uow, c=citizen: uow.tickets.list_for_citizen(c))
        assert len(filed) == 1, f"kill after {delay_ms} ms: {len(filed)} tickets"
        assert ticket_number(reply) == filed[0].number, reply
        # and the citizen is not blocked by the dead process's lock: a new message is answered
        assert await rig.send(citizen, "我的诉求")
