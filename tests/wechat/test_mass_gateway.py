"""Mass messages and user tags through HttpMassGateway against the fake WeChat API, which enforces
WeChat's limits: 4 mass messages a user a month, 50 openids per batchtagging, 100 tags, and a
repeated clientmsgid refused."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from bot.core.ports import CLIENTMSGID_EXISTS, WeChatAPIError
from bot.settings import Settings
from bot.wechat.fake_api import FakeWeChatAPI
from bot.wechat.gateway import HttpMassGateway
from storage.kv import MemoryKeyValueStore

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
