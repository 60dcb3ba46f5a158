"""Mass messages and user tags through HttpMassGateway against the fake WeChat API, which enforces
WeChat's limits: 4 mass messages a user a month, 50 openids per batchtagging, 100 tags, and a
repeated clientmsgid refused."""
from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from bot.core.broadcasts import Channel
from bot.core.ports import CLIENTMSGID_EXISTS, WeChatAPIError
from bot.core.receptions import Follow
from handlers import broadcasts
from bot.settings import Settings
from bot.wechat.fake_api import FakeWeChatAPI
from bot.wechat.gateway import HttpMassGateway
from storage.kv import MemoryKeyValueStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # the unit tests' fakes: seed data, clock
from fakes import MONDAY_10, FixedClock, make_services, seed  # noqa: E402

USERS = [f"oUser{i:04d}" for i in range(60)]


@pytest.fixture
async def gateway(fake_api_client: TestClient) -> AsyncIterator[HttpMassGateway]:
    settings = Settings(_env_file=None, wechat_api_base=str(fake_api_client.make_url("")),
                        wechat_appid="wxtestappid000001", wechat_secret="test-secret")
    gw = HttpMassGateway(settings, MemoryKeyValueStore())
    yield gw
    await gw.aclose()


async def test_a_user_receives_at_most_four_mass_messages_a_month(gateway, fake_api: FakeWeChatAPI) -> None:
    for n in range(5):
        await gateway.mass_send(USERS[:3], f"通知{n}", f"c{n}")
    assert fake_api.mass_received[USERS[0]] == ["通知0", "通知1", "通知2", "通知3"]
    assert fake_api.mass_calls()[-1]["over_limit"] == 3
    body = fake_api.mass_calls()[0]["json"]
    assert body["touser"] == USERS[:3] and body["clientmsgid"] == "c0" and body["text"] == {"content": "通知0"}


async def test_a_repeated_clientmsgid_is_refused_and_sends_nothing(gateway, fake_api: FakeWeChatAPI) -> None:
    await gateway.mass_send(USERS[:2], "一次", "same")
    with pytest.raises(WeChatAPIError) as refused:
        await gateway.mass_send(USERS[:2], "一次", "same")
    assert refused.value.errcode == CLIENTMSGID_EXISTS
    assert fake_api.mass_received[USERS[0]] == ["一次"]


async def test_mass_list_needs_two_openids(gateway) -> None:
    with pytest.raises(WeChatAPIError):
        await gateway.mass_send(USERS[:1], "x", "lone")


async def test_tags_at_most_50_per_batchtagging_and_100_tags_then_a_tag_send(gateway, fake_api: FakeWeChatAPI) -> None:
    tag = await gateway.create_tag("接待·盛泽镇")
    with pytest.raises(WeChatAPIError) as too_many:
        await gateway.tag_users(tag, USERS[:51])
    assert too_many.value.errcode == 40032
    await gateway.tag_users(tag, USERS[:50])
    await gateway.tag_users(tag, USERS[50:])
    await gateway.untag_users(tag, USERS[:1])
    await gateway.mass_send_tag(tag, "盛泽镇周六有接待", "t1")
    assert USERS[0] not in fake_api.mass_received and fake_api.mass_received[USERS[59]] == ["盛泽镇周六有接待"]
    for n in range(99):
        await gateway.create_tag(f"t{n}")
    with pytest.raises(WeChatAPIError) as full:
        await gateway.create_tag("one more")
    assert full.value.errcode == 45056


async def test_follows_are_mirrored_as_town_tags_in_batches_of_50_then_a_town_broadcast_goes_by_tag(
        gateway, fake_api: FakeWeChatAPI) -> None:
    services = make_services(FixedClock(MONDAY_10))
    await seed(services)
    async with services.uow() as uow:
        for i, openid in enumerate(USERS * 2):  # 120 follows: 60 people, each of both 盛泽镇 stations
            await uow.follows.follow(Follow(openid, "SZ-HOME" if i < 60 else "SZ-LAW", MONDAY_10))
        await uow.commit()
    assert await broadcasts.sync_tags(services, gateway) == 120
    tagging = [c for c in fake_api.calls if c["path"].endswith("batchtagging")]
    assert [len(c["json"]["openid_list"]) for c in tagging] == [50, 10]  # 60 people, one tag for the town
    [tag] = fake_api.tags
    assert fake_api.tags[tag] == "接待·盛泽镇" and fake_api.tag_members[tag] == set(USERS)
    assert await broadcasts.sync_tags(services, gateway) == 0  # nothing pending

    _, plan = await broadcasts.create_broadcast(services, broadcasts.BroadcastRequest("town", "盛泽镇", "x", dry_run=True))
    assert [(s.channel, s.tag_id) for s in plan.sends] == [(Channel.MASS_TAG, tag)]
    _, plan = await broadcasts.create_broadcast(services, broadcasts.BroadcastRequest("station", "SZ-HOME", "x", dry_run=True))
    assert {s.channel for s in plan.sends} == {Channel.MASS_OPENIDS}

    async with services.uow() as uow:
        await uow.follows.unfollow(USERS[0], ["SZ-HOME"])  # still follows SZ-LAW: keeps the town tag
        await uow.follows.unfollow(USERS[1])  # stops both: leaves the tag
        await uow.commit()
    _, plan = await broadcasts.create_broadcast(services, broadcasts.BroadcastRequest("town", "盛泽镇", "x", dry_run=True))
    assert {s.channel for s in plan.sends} == {Channel.MASS_OPENIDS}  # the tag is behind: openid lists
    assert await broadcasts.sync_tags(services, gateway) == 3
    assert fake_api.tag_members[tag] == set(USERS) - {USERS[1]}
    broadcast, plan = await broadcasts.create_broadcast(services, broadcasts.BroadcastRequest("town", "盛泽镇", "盛泽镇周六接待"))
    assert plan.sends[0].channel == Channel.MASS_TAG
    assert await broadcasts.send_pending(services, gateway) == 1
    assert fake_api.mass_received[USERS[2]] == ["盛泽镇周六接待"] and USERS[1] not in fake_api.mass_received
