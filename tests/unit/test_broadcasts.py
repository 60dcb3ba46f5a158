"""The broadcast plan and the monthly budget (pure), and the use cases on memory stores."""
from __future__ import annotations

import pytest

from bot.core.broadcasts import MASS_MIN, Channel, Recipient, Unreachable, plan_broadcast
from bot.core.errors import DomainError
from bot.core.receptions import Follow
from fakes import MONDAY_10, FixedClock, make_services, seed
from handlers import broadcasts, delivery
from handlers.broadcasts import BroadcastRequest


def people(n: int, **kw) -> list[Recipient]:
    return [Recipient(f"o{i:05d}", **kw) for i in range(n)]


def test_plan_by_channel_and_who_cannot_be_reached() -> None:
    audience = [*people(5), Recipient("in-window", in_window=True), Recipient("gone", following_account=False),
                Recipient("spent", mass_used=4), Recipient("used-3", mass_used=3)]
    plan = plan_broadcast(audience, batch=4)
    assert plan.customer_service == ("in-window",)
    assert [len(s.openids) for s in plan.sends] == [4, 2]  # 6 by openid list, batches of at most 4
    assert all(s.channel == Channel.MASS_OPENIDS for s in plan.sends)
    assert plan.unreachable[Unreachable.UNFOLLOWED] == 1 and plan.unreachable[Unreachable.BUDGET] == 1
    assert plan.remaining_budget == 1  # used-3 has one left this month
    assert plan.summary() == {"mass_tag": 0, "mass_openids": 6, "customer_service": 1, "subscribe": 0,
                              "unreachable_unfollowed": 1, "unreachable_budget": 1, "unreachable_too_few": 0,
                              "unreachable": 2, "remaining_budget": 1}


def test_a_reception_announcement_goes_by_subscribe_notice_to_who_has_one_left() -> None:
    audience = [*people(3), Recipient("sub", subscribed=True), Recipient("sub-spent", subscribed=True, mass_used=4),
                Recipient("sub-in-window", subscribed=True, in_window=True)]
    plan = plan_broadcast(audience, subscribe=True)
    assert plan.subscribe == ("sub", "sub-spent")  # no mass budget needed: the spent one is reached too
    assert plan.customer_service == ("sub-in-window",)  # the window first: the grant is kept
    assert plan.count(Channel.MASS_OPENIDS) == 3 and plan.summary()["subscribe"] == 2
    assert plan.reached == 6 and plan.summary()["unreachable"] == 0
    assert sorted(plan.openids) == sorted(r.openid for r in audience)
    text_notice = plan_broadcast(audience)  # a text notice has no typed fields: mass, as before
    assert text_notice.subscribe == () and text_notice.unreachable[Unreachable.BUDGET] == 1
    tagged = plan_broadcast([*people(3), Recipient("sub", subscribed=True)], tag_id=7, whole_tag=True, subscribe=True)
    assert {s.channel for s in tagged.sends} == {Channel.MASS_OPENIDS}  # a tag send would reach "sub" twice


def test_a_whole_tag_goes_in_one_tag_send_only_when_everyone_is_due_a_mass_message() -> None:
    plan = plan_broadcast(people(300), tag_id=101, whole_tag=True)
    assert [(s.channel, s.tag_id, len(s.openids)) for s in plan.sends] == [(Channel.MASS_TAG, 101, 300)]
    mixed = plan_broadcast([*people(300), Recipient("in-window", in_window=True)], tag_id=101, whole_tag=True)
    assert {s.channel for s in mixed.sends} == {Channel.MASS_OPENIDS}  # nobody gets it twice
    assert plan_broadcast(people(300), tag_id=101).sends[0].channel == Channel.MASS_OPENIDS  # a station ≠ its town's tag


def test_no_lone_openid_in_a_mass_list() -> None:
    plan = plan_broadcast(people(9), batch=4)
    assert [len(s.openids) for s in plan.sends] == [4, 3, 2]
    assert all(len(s.openids) >= MASS_MIN for s in plan.sends)
    lone = plan_broadcast(people(1))
    assert lone.sends == () and lone.unreachable[Unreachable.TOO_FEW] == 1


async def _followers(services, n: int, station: str = "SZ-HOME") -> list[str]:
    openids = [f"oFollower{i:05d}" for i in range(n)]
    async with services.uow() as uow:
        for openid in openids:
            await uow.follows.follow(Follow(openid, station, MONDAY_10))
        await uow.commit()
    return openids


async def test_dry_run_stores_nothing_and_the_fifth_mass_message_is_refused() -> None:
    services = make_services(FixedClock(MONDAY_10))
    await seed(services)
    openids = await _followers(services, 3)
    await delivery.record_inbound(services, openids[0])  # inside the 48 h window
    _, plan = await broadcasts.create_broadcast(services, BroadcastRequest("town", "盛泽镇", "通知", dry_run=True))
    assert (plan.count(Channel.CUSTOMER_SERVICE), plan.count(Channel.MASS_OPENIDS), plan.remaining_budget) == (1, 2, 4)
    async with services.uow() as uow:
        assert await uow.broadcasts.claim(None, MONDAY_10, MONDAY_10) is None  # nothing stored
    async with services.uow() as uow:
        for _ in range(4):
            await uow.broadcasts.count_mass(openids, "2026-12")
        await uow.commit()
    _, plan = await broadcasts.create_broadcast(services, BroadcastRequest("station", "SZ-HOME", "通知", dry_run=True))
    assert (plan.count(Channel.CUSTOMER_SERVICE), plan.count(Channel.MASS_OPENIDS)) == (1, 0)
    await delivery.record_inbound(services, "nobody")  # unrelated
    services.clock.advance(hours=49)  # the window closes: nobody can be reached
    with pytest.raises(DomainError) as refused:
        await broadcasts.create_broadcast(services, BroadcastRequest("station", "SZ-HOME", "通知"))
    assert refused.value.key == "broadcast_budget_exhausted"
    assert "4次" in services.texts.get(refused.value.key, **refused.value.params)


async def test_in_window_followers_get_an_outbox_message_the_rest_mass_sends() -> None:
    services = make_services(FixedClock(MONDAY_10))
    await seed(services)
    openids = await _followers(services, 4)
    await delivery.record_inbound(services, openids[0])
    broadcast, plan = await broadcasts.create_broadcast(services, BroadcastRequest("town", "盛泽镇", "周六上午有接待"))
    async with services.uow() as uow:
        queued = await uow.outbox.list()
        sends = await uow.broadcasts.sends(broadcast.id)
    assert [(m.recipient_openid, m.text) for m in queued] == [(openids[0], "周六上午有接待")]
    assert [s.openids for s in sends] == [tuple(openids[1:])]
    status = await broadcasts.broadcast_status(services, broadcast.id)
    assert status["progress"] == {"mass_openids": {"sent": 0, "pending": 3, "failed": 0}}


def test_api_request_validation() -> None:
    assert broadcasts.request_from_json({"town": "盛泽镇", "text": "x", "dry_run": True}) == \
        BroadcastRequest("town", "盛泽镇", "x", None, True)
    assert broadcasts.request_from_json({"station": "S1", "reception_id": 3}).reception_id == 3
    for bad, key in (({"text": "x"}, "broadcast_bad_audience"), ({"town": "a", "station": "b", "text": "x"}, "broadcast_bad_audience"),
                     ({"town": "a"}, "broadcast_bad_content"), ({"town": "a", "text": "x", "reception_id": 1}, "broadcast_bad_content")):
        with pytest.raises(DomainError) as caught:
            broadcasts.request_from_json(bad)
        assert caught.value.key == key


async def test_a_broadcast_nobody_follows_or_nobody_can_receive_is_refused_with_the_reason() -> None:
    services = make_services(FixedClock(MONDAY_10))
    await seed(services)
    for request, key in ((BroadcastRequest("town", "开发区", "x"), "broadcast_nobody"),
                         (BroadcastRequest("town", "火星", "x"), "broadcast_unknown_audience")):
        with pytest.raises(DomainError) as refused:
            await broadcasts.create_broadcast(services, request)
        assert refused.value.key == key
    await _followers(services, 1)  # one person: a mass list needs two
    with pytest.raises(DomainError) as refused:
        await broadcasts.create_broadcast(services, BroadcastRequest("station", "SZ-HOME", "x"))
    assert refused.value.key == "broadcast_unreachable"


async def test_a_subscribe_notice_whose_sender_died_mid_call_is_unconfirmed_not_sent_twice() -> None:
    from datetime import date, time, timedelta

    from bot.core.broadcasts import SendStatus
    from bot.core.receptions import Reception
    from fakes import RecordingGateway
    from handlers import channels, receptions

    services = make_services(FixedClock(MONDAY_10))
    services.settings.subscribe_id_reception = "TPL-RECEPTION"
    await seed(services)
    openids = await _followers(services, 2)
    for openid in openids:
        await channels.grant_subscription(services, openid, "TPL-RECEPTION")
    stored = await receptions.create_reception(services, Reception(
        "SZ-HOME", ("D004",), date(2026, 12, 12), time(9), time(11), "主题接待：养老服务", "盛泽镇代表之家"))
    broadcast, plan = await broadcasts.create_broadcast(services, BroadcastRequest("station", "SZ-HOME",
                                                                                   reception_id=stored.id))
    assert plan.subscribe == tuple(openids) and plan.sends == ()
    async with services.uow() as uow:  # a sender claims the first and dies during the call
        await uow.broadcasts.claim(broadcast.id, MONDAY_10, MONDAY_10 + timedelta(minutes=2))
        await uow.commit()
    gateway = RecordingGateway()
    assert await broadcasts.send_pending(services, gateway, broadcast.id) == 1  # the other one
    services.clock.advance(minutes=3)  # the dead sender's claim runs out
    assert await broadcasts.send_pending(services, gateway, broadcast.id) == 0
    assert [s.openid for s in gateway.sent] == [openids[1]]  # not sent blindly again
    status = await broadcasts.broadcast_status(services, broadcast.id)
    [failure] = status["failures"]
    assert failure["reason"].startswith("发送时程序中断") and status["progress"]["subscribe"]["failed"] == 1
    assert await broadcasts.retry_failed(services, broadcast.id) == 1  # staff choose to send it again
    assert await broadcasts.send_pending(services, gateway, broadcast.id) == 1
    assert sorted(s.openid for s in gateway.sent) == sorted(openids)
    assert gateway.sent[0].data["thing1"] == "主题接待：养老服务" and gateway.sent[0].template_id == "TPL-RECEPTION"
    async with services.uow() as uow:
        assert {s.status for s in await uow.broadcasts.sends(broadcast.id)} == {SendStatus.SENT}
