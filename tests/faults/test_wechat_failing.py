"""The WeChat API failing under a running server: a hung call, window errors (45015, 45047), a
rejected token (40001: fetched again, then sent), a 502. Every push ends delivered or visibly not
(held, or waiting for its retry, with the reason kept for `zhitongche outbox`), and the hung call
holds up no other recipient."""
from __future__ import annotations

import time
from datetime import datetime

import pytest
from harness import Rig, ticket_number

from bot.core.outbound import OutboxMessage, OutboxStatus
from bot.wechat.fake_api import MESSAGE_PATHS

pytestmark = pytest.mark.faults

CUSTOM = MESSAGE_PATHS[0]
HANG = 30.0  # far past ZTC_WECHAT_TIMEOUT (2 s in the rig)


async def test_every_push_is_delivered_or_visibly_not(rig: Rig) -> None:
    await rig.bind_deputy()
    citizens = [f"oCitizen_fault_api_{i:06d}" for i in range(6)]
    for openid in citizens:
        await rig.send(openid, "你好")  # their customer-service windows are open
    await rig.walk_form(citizens[0])
    number = ticket_number(await rig.send(citizens[0], "是"))
    await rig.delivered()

    async def queue(uow) -> None:
        for openid in citizens:
            await uow.outbox.add(OutboxMessage(openid, f"测试通知 {openid[-2:]}", created_at=datetime.now()))
        await uow.commit()

    await rig.query(queue)
    rig.api.hang_next(CUSTOM, seconds=HANG)
    for errcode, errmsg in ((45015, "response out of time limit"), (45047, "out of response count limit"),
                            (40001, "invalid credential")):
        rig.api.fail_next(CUSTOM, errcode, errmsg)
    rig.api.http_error_next(CUSTOM, 502)
    tokens, calls_before, started = rig.api.token_fetches, len(rig.api.calls), time.time()
    assert await rig.send(citizens[0], f"#{number} 补充：晚上八点以后最黑")  # a push to the deputy: kicks delivery

    outbox = await rig.delivered(timeout=30)
    by_status = {s: [m for m in outbox if m.status == s] for s in OutboxStatus}
    unsent = by_status[OutboxStatus.PENDING] + by_status[OutboxStatus.HELD] + by_status[OutboxStatus.FAILED]
    assert all(m.last_error for m in unsent), unsent  # visibly: each keeps its reason
    assert {m.status for m in outbox} <= {OutboxStatus.SENT, OutboxStatus.HELD, OutboxStatus.PENDING}
    # 45015/45047: WeChat says the window is shut; no template is configured, so they wait for
    # the user's next message (and say so)
    assert len(by_status[OutboxStatus.HELD]) == 2
    assert all("no template" in m.last_error for m in by_status[OutboxStatus.HELD])
    assert len(by_status[OutboxStatus.PENDING]) >= 1  # the hung call and the 502 wait for their retry
    assert rig.api.token_fetches > tokens  # 40001: the token was fetched again
    # everything the fake accepted is marked sent, and none of it waited for the hung call
    accepted = [c for c in rig.api.calls[calls_before:] if c["path"] == CUSTOM and c["errcode"] == 0]
    assert accepted and len(by_status[OutboxStatus.SENT]) >= len(accepted) - 1
    assert all(c["time"] < started + HANG / 2 for c in accepted)
    delivered = {(c["openid"], c["text"]) for c in accepted}
    assert all((m.recipient_openid, m.text) in delivered for m in by_status[OutboxStatus.SENT]
               if m.text.startswith("测试通知"))
