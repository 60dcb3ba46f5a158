"""The test's own Redis killed and started again empty under a running server: while it is down
every POST is a 503; when it is back, a deputy reply WeChat retries is not relayed twice (the
database record of the first handling), and a citizen who was mid-form is told once that the
form was lost."""
from __future__ import annotations

import asyncio

import pytest
from harness import Rig, TEXTS, asks, ticket_number

pytestmark = pytest.mark.faults


async def test_redis_back_empty_dedupe_survives_and_the_mid_form_citizen_is_told_once(rig: Rig) -> None:
    deputy = await rig.bind_deputy()
    citizen, mid_form = "oCitizen_fault_redis_0001", "oCitizen_fault_redis_0002"
    await rig.walk_form(citizen)
    number = ticket_number(await rig.send(citizen, "是"))
    relay = rig.text_xml(deputy, f"#{number} 明天上午我去现场看看")
    status, relay_ack = await rig.post(relay)
    assert status == 200 and relay_ack
    reply = await rig.send(mid_form, "我们村口的路灯坏了一个星期了")
    assert reply and not asks(reply, "form_ask_confirm")
    await rig.delivered()

    rig.redis.kill()
    assert (await rig.post(rig.text_xml(citizen, "在吗")))[0] == 503
    rig.redis.start()  # empty
    for _ in range(100):  # the server reconnects by itself
        status, again = await rig.post(relay)  # WeChat's retry of the deputy's reply
        if status == 200:
            break
        assert status == 503
        await asyncio.sleep(0.1)
    assert status == 200 and again == relay_ack
    await rig.delivered()
    relayed = [t for t in rig.api.sent_texts(citizen) if "明天上午我去现场看看" in t]
    assert len(relayed) == 1

    # the mid-form citizen answers a question whose form is gone: told once, in one line
    assert await rig.send(mid_form, "13912345678") == TEXTS.get("form_lost")
    assert await rig.send(mid_form, "13912345678") != TEXTS.get("form_lost")
