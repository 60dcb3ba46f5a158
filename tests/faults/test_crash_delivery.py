"""kill -9 in the middle of a delivery pass against a slow WeChat: after the restart every push is
delivered within seconds (claims are short leases), none is lost, and a message is sent twice
only in the documented window (accepted by WeChat, killed before it was marked sent: at most the
calls in flight at the kill)."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime

import pytest
from harness import Rig, ticket_number

from bot.core.outbound import OutboxMessage, OutboxStatus
from handlers.delivery import SEND_CONCURRENCY

pytestmark = pytest.mark.faults

RECIPIENTS = 12
PER_RECIPIENT = 3


async def test_killed_mid_pass_everything_is_delivered_soon_and_doubles_only_in_the_window(rig: Rig) -> None:
    await rig.bind_deputy()
    citizen = "oCitizen_fault_deliv_0000"
    await rig.walk_form(citizen)
    number = ticket_number(await rig.send(citizen, "是"))
    await rig.delivered()
    recipients = [f"oCitizen_fault_rcpt_{i:04d}" for i in range(RECIPIENTS)]
    for openid in recipients:  # each wrote to us: their customer-service window is open
        await rig.send(openid, "你好")

    async def queue(uow) -> None:
        for openid in recipients:
            for n in range(PER_RECIPIENT):
                await uow.outbox.add(OutboxMessage(openid, f"通知{n} 给 {openid[-4:]}", created_at=datetime.now()))
        await uow.commit()

    await rig.query(queue)
    rig.api.delay = 0.4  # a slow WeChat: the pass is still under way at the kill
    sent_before = len(rig.api.messages())
    assert await rig.send(citizen, f"#{number} 补充一下：灯杆也歪了")  # a push: delivery is kicked
    for _ in range(100):
        if len(rig.api.messages()) >= sent_before + 5:
            break
        await asyncio.sleep(0.05)
    rig.kill()
    in_flight = sum(1 for c in rig.api.messages() if c["time"] > time.time() - rig.api.delay - 0.1)
    rig.api.delay = 0.0
    restarted = time.monotonic()
    await rig.start()
    outbox = await rig.delivered(timeout=45)
    print(f"\nall delivered {time.monotonic() - restarted:.1f}s after the restart began")
    assert {m.status for m in outbox} == {OutboxStatus.SENT}
    counts = Counter((c["openid"], c["text"]) for c in rig.api.messages())
    wanted = [(m.recipient_openid, m.text) for m in outbox]
    assert all(counts[w] >= 1 for w in wanted)
    doubled = sum(counts[w] - 1 for w in wanted)
    assert doubled <= min(in_flight, SEND_CONCURRENCY), (doubled, in_flight)
