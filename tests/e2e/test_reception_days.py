"""Reception days through the running app: a citizen asks over /wechat and gets the real
reception; a broadcast to 2,000 followers reaches each exactly once although its sender is
interrupted (in-process: the sender dies right after WeChat accepted a send, before marking it)
and another sender, and the scheduled job, take over."""
from __future__ import annotations

import asyncio
from datetime import date, time, timedelta

import pytest

from bot.core.broadcasts import SendStatus
from bot.core.receptions import Follow, Reception
from handlers import broadcasts, receptions
from handlers.broadcasts import CLAIM_LEASE, BroadcastRequest


async def test_a_citizen_asks_and_gets_the_right_reception(stack) -> None:
    await receptions.create_reception(stack.bot.services, Reception(
        "SL-01", ("D001", "D002"), date(2026, 12, 5), time(9), time(11), "主题接待：养老服务", "江村村委会"))
    await receptions.create_reception(stack.bot.services, Reception(
        "KF-LB", ("D003",), date(2026, 12, 12), time(14), time(16), "主题接待：劳动保障", "开发区人力资源市场"))
    reply = await stack.send("oCitizenReception01", "这周哪个代表接待")
    assert reply is not None
    assert "12月5日（周六）09:00-11:00 江村村委会，测试代表甲、测试代表乙代表，主题接待：养老服务" in reply
    assert "开发区" not in reply  # 12月12日 is next week
    reply = await stack.send("oCitizenReception01", "开发区哪天有代表接待")
    assert reply is not None and "12月12日（周六）14:00-16:00 开发区人力资源市场" in reply


class Killed(BaseException):
    """The sender process dies (not an Exception: nothing catches it on the way out)."""


class DiesAfterSending:
    def __init__(self, inner, after: int) -> None:
        self.inner, self.left = inner, after

    async def mass_send(self, openids, text, clientmsgid):  # type: ignore[no-untyped-def]
        msg_id = await self.inner.mass_send(openids, text, clientmsgid)
        self.left -= 1
        if self.left == 0:
            raise Killed  # WeChat has it; our row still says "claimed"
        return msg_id


@pytest.mark.parametrize("encrypted", [False])
async def test_a_broadcast_to_2000_followers_reaches_each_exactly_once_across_an_interruption(stack) -> None:
    services, api = stack.bot.services, stack.api
    stack.bot.scheduler.pause()  # the senders below are the workers, the job runs when told
    services.settings.broadcast_batch = 100
    services.settings.broadcast_calls_per_minute = 6000  # pacing is measured in bench/ and tests/faults
    followers = [f"oFollower{i:05d}" for i in range(2000)]
    async with services.uow() as uow:
        for openid in followers:
            await uow.follows.follow(Follow(openid, "SL-01", stack.clock.now()))
        await uow.commit()
    _, plan = await broadcasts.create_broadcast(services, BroadcastRequest("station", "SL-01", "周六上午江村有代表接待",
                                                                           dry_run=True))
    assert plan.summary()["mass_openids"] == 2000 and len(plan.sends) == 20
    broadcast, _ = await broadcasts.create_broadcast(services, BroadcastRequest("station", "SL-01", "周六上午江村有代表接待"))

    with pytest.raises(Killed):
        await broadcasts.send_pending(services, DiesAfterSending(stack.bot.gateway, after=7), broadcast.id)
    status = await broadcasts.broadcast_status(services, broadcast.id)
    assert status["progress"]["mass_openids"] == {"sent": 600, "pending": 1400, "failed": 0}

    # a restarted sender and a second worker, at once; the dead one's claim has not run out yet
    gateway = stack.bot.gateway
    sent = await asyncio.gather(broadcasts.send_pending(services, gateway), broadcasts.send_pending(services, gateway))
    assert sum(sent) == 13  # all but the dead sender's
    stack.clock.current += CLAIM_LEASE + timedelta(seconds=1)
    assert await stack.bot.run_job("send_broadcasts") == 1  # the claimed one: WeChat says 45065, so it counts as sent

    assert all(api.mass_received[openid] == ["周六上午江村有代表接待"] for openid in followers)
    calls = api.mass_calls()
    assert len(calls) == 21 and sum(c["errcode"] == 45065 for c in calls) == 1
    assert len({c["json"]["clientmsgid"] for c in calls}) == 20
    async with services.uow() as uow:
        sends = await uow.broadcasts.sends(broadcast.id)
        used = await uow.broadcasts.mass_used(followers, "2026-12")
    assert {s.status for s in sends} == {SendStatus.SENT}
    assert set(used.values()) == {1}  # the budget counted once per person


@pytest.mark.parametrize("encrypted", [False])
async def test_two_workers_never_both_send_a_reminder(stack) -> None:
    from datetime import datetime

    services = stack.bot.services
    stack.bot.scheduler.pause()
    async with services.uow() as uow:
        await uow.deputies.bind("D001", "oDeputyD001Bound")
        await uow.commit()
    await receptions.create_reception(services, Reception(
        "SL-01", ("D001",), date(2026, 12, 5), time(9), time(11), "主题接待：养老服务", "江村村委会"))
    stack.clock.current = datetime(2026, 12, 4, 18, 0)
    results = await asyncio.gather(receptions.send_reminders(services), receptions.send_reminders(services),
                                   stack.bot.run_job("remind_receptions"))
    assert sum(results) == 1
    async with services.uow() as uow:
        queued = await uow.outbox.list(("pending", "held", "sent", "failed"))
    assert [m.recipient_openid for m in queued if "接待提醒" in m.text] == ["oDeputyD001Bound"]  # held till they write
