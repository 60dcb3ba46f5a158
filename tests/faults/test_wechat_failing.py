"""The WeChat API failing under a running server: window errors (45015, 45047), a rejected token
(40001: fetched again), 5xx and a hung call. Every push ends delivered or visibly not (held or
retrying with its reason in the outbox), and a hung call holds up no other recipient."""
from __future__ import annotations

import pytest
from harness import Rig

from bot.core.outbound import OutboxStatus
from bot.wechat.fake_api import MESSAGE_PATHS

pytestmark = pytest.mark.faults

CUSTOM = MESSAGE_PATHS[0]


async def test_every_push_is_delivered_or_visibly_not(rig: Rig) -> None:
    deputy = await rig.bind_deputy()
    citizens = [f"oCitizen_fault_api_{i:06d}" for i in range(5)]
    for openid in citizens:
        await rig.send(openid, "你好")
    await rig.walk_form(citizens[0])
    await rig.send(citizens[0], "是")
    await rig.delivered()
    number = 1001

    # one relay per citizen; WeChat answers them in this order
    rig.api.hang_next(CUSTOM, seconds=30)  # the first call hangs (the client gives up at 2 s)
    rig.api.fail_next(CUSTOM, 45015, "response out of time limit")
    rig.api.fail_next(CUSTOM, 45047, "out of response count limit")
    rig.api.fail_next(CUSTOM, 40001, "invalid credential")  # the token is fetched again, then sent
    rig.api.http_error_next(CUSTOM, 502)
    tokens_before = rig.api.token_fetches
    async def file(uow):  # tickets for the other citizens, all with the same deputy
        return None
    del file
    for openid in citizens[1:]:
        await rig.walk_form(openid)
        await rig.send(openid, "是")
    outbox = await rig.delivered(timeout=30)  # nothing left pending except scheduled retries
    by_status = {s: [m for m in outbox if m.status == s] for s in OutboxStatus}
    assert not [m for m in by_status[OutboxStatus.PENDING] if not m.last_error]  # pending only to retry
    for message in by_status[OutboxStatus.PENDING] + by_status[OutboxStatus.HELD]:
        assert message.last_error  # visibly: the reason is kept (zhitongche outbox shows it)
    assert rig.api.token_fetches > tokens_before
    errors = " ".join(m.last_error for m in outbox)
    assert "45015" in errors or "45047" in errors or by_status[OutboxStatus.HELD]
    assert any("502" in m.last_error or "Timeout" in m.last_error or "-1" in m.last_error
               for m in by_status[OutboxStatus.PENDING])
    delivered = {(c["openid"], c["text"]) for c in rig.api.messages()}
    assert len(by_status[OutboxStatus.SENT]) >= len(citizens)  # most got through despite the failures
    assert all((m.recipient_openid, m.text) in delivered for m in by_status[OutboxStatus.SENT])
    del number, deputy
