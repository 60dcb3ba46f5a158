"""HttpWeChatGateway and the token manager against FakeWeChatAPI over real HTTP."""
from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from bot.core.keys import WECHAT_TOKEN
from bot.core.ports import WeChatAPIError
from bot.settings import Settings
from bot.wechat.fake_api import FakeWeChatAPI
from bot.wechat.gateway import HttpWeChatGateway
from bot.wechat.token import AccessTokenManager
from storage.kv import MemoryKeyValueStore

CITIZEN = "oCitizen_abcdefghijklmnop"
SEND = "/cgi-bin/message/custom/send"
TEMPLATE = "/cgi-bin/message/template/send"


@pytest.fixture
def kv() -> MemoryKeyValueStore:
    return MemoryKeyValueStore()


def _settings(base: str) -> Settings:
    return Settings(_env_file=None, wechat_api_base=base, wechat_appid="wxtestappid000001", wechat_secret="test-secret")


@pytest.fixture
async def gateway(fake_api_client: TestClient, kv: MemoryKeyValueStore) -> AsyncIterator[HttpWeChatGateway]:
    gw = HttpWeChatGateway(_settings(str(fake_api_client.make_url(""))), kv)
    yield gw
    await gw.aclose()


def _outbound(fake: FakeWeChatAPI, path: str) -> list[dict]:
    return [c for c in fake.calls if c["path"] == path]


async def test_send_text_fetches_token_and_sends(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI, kv: MemoryKeyValueStore) -> None:
    await gateway.send_text(CITIZEN, "您的诉求 #12 已由代表受理")
    [token_call] = _outbound(fake_api, "/cgi-bin/token")
    assert token_call["query"]["grant_type"] == "client_credential"
    assert token_call["query"]["appid"] == "wxtestappid000001"
    assert "secret" not in token_call["query"]  # the fake keeps no secrets in its log
    [send] = _outbound(fake_api, SEND)
    assert send["query"]["access_token"] == fake_api.current_token == await kv.get(WECHAT_TOKEN)
    assert send["json"] == {"touser": CITIZEN, "msgtype": "text", "text": {"content": "您的诉求 #12 已由代表受理"}}
    assert fake_api.sent_texts(CITIZEN) == ["您的诉求 #12 已由代表受理"]


async def test_chinese_is_sent_unescaped(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI) -> None:
    await gateway.send_text(CITIZEN, "路灯")
    raw = _outbound(fake_api, SEND)[-1]["raw"]
    assert "路灯" in raw and "\\u" not in raw


async def test_burst_of_sends_fetches_token_once(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI) -> None:
    await asyncio.gather(*(gateway.send_text(f"oUser{i:020d}", f"消息{i}") for i in range(20)))
    assert fake_api.token_fetches == 1
    assert len(fake_api.messages()) == 20


async def test_two_gateways_sharing_the_store_fetch_once(fake_api_client: TestClient, fake_api: FakeWeChatAPI, kv: MemoryKeyValueStore) -> None:
    """Two workers (two gateways, one shared store) still fetch a single token."""
    base = str(fake_api_client.make_url(""))
    a, b = HttpWeChatGateway(_settings(base), kv), HttpWeChatGateway(_settings(base), kv)
    try:
        await asyncio.gather(*(gw.send_text(CITIZEN, str(i)) for i, gw in enumerate([a, b] * 5)))
    finally:
        await a.aclose()
        await b.aclose()
    assert fake_api.token_fetches == 1 and len(fake_api.messages()) == 10


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
async def test_rejected_token_is_refetched_and_call_retried_once(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI, errcode: int) -> None:
    await gateway.send_text(CITIZEN, "first")
    fake_api.fail_next(SEND, errcode, "invalid credential")
    await gateway.send_text(CITIZEN, "second")
    assert fake_api.token_fetches == 2
    assert [c["errcode"] for c in _outbound(fake_api, SEND)] == [0, errcode, 0]
    assert fake_api.sent_texts(CITIZEN) == ["first", "second"]


async def test_token_rejected_twice_raises(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI) -> None:
    fake_api.fail_next(SEND, 40001, "invalid credential", times=2)
    with pytest.raises(WeChatAPIError) as err:
        await gateway.send_text(CITIZEN, "x")
    assert err.value.errcode == 40001
    assert len(_outbound(fake_api, SEND)) == 2  # retried once, not more


async def test_expired_token_on_the_fake_is_refreshed(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI) -> None:
    await gateway.send_text(CITIZEN, "a")
    fake_api.expire_token()
    await gateway.send_text(CITIZEN, "b")
    assert [c["errcode"] for c in _outbound(fake_api, SEND)] == [0, 42001, 0]


async def test_token_fetched_elsewhere_invalidates_ours(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI, fake_api_client: TestClient) -> None:
    """A second fetch (another process not sharing our store) makes ours stale: 40001 → refetch."""
    await gateway.send_text(CITIZEN, "a")
    resp = await fake_api_client.get("/cgi-bin/token", params={"grant_type": "client_credential", "appid": "wxtestappid000001", "secret": "test-secret"})
    assert (await resp.json())["access_token"]
    await gateway.send_text(CITIZEN, "b")
    assert fake_api.sent_texts(CITIZEN) == ["a", "b"]


@pytest.mark.parametrize(
    ("errcode", "errmsg"),
    [(45015, "response out of time limit"), (45047, "out of response count limit"), (43004, "require subscribe")],
)
async def test_api_errors_raise_wechat_api_error(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI, errcode: int, errmsg: str) -> None:
    fake_api.fail_next(SEND, errcode, errmsg)
    with pytest.raises(WeChatAPIError) as err:
        await gateway.send_text(CITIZEN, "x")
    assert (err.value.errcode, err.value.errmsg) == (errcode, errmsg)
    assert fake_api.sent_texts() == []
    await gateway.send_text(CITIZEN, "y")  # only the next one failed
    assert fake_api.sent_texts() == ["y"]


async def test_token_endpoint_error(fake_api_client: TestClient, kv: MemoryKeyValueStore) -> None:
    settings = _settings(str(fake_api_client.make_url(""))).model_copy(update={"wechat_secret": "wrong"})
    gw = HttpWeChatGateway(settings, kv)
    try:
        with pytest.raises(WeChatAPIError) as err:
            await gw.send_text(CITIZEN, "x")
    finally:
        await gw.aclose()
    assert err.value.errcode == 40125
    assert await kv.get(WECHAT_TOKEN) is None


async def test_template_message(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI) -> None:
    await gateway.send_template(CITIZEN, "TPL_STATUS", {"thing2": "您的诉求有新进展", "character_string1": "#12"}, url="https://example.org/t/12")
    [call] = _outbound(fake_api, TEMPLATE)
    assert call["json"] == {
        "touser": CITIZEN,
        "template_id": "TPL_STATUS",
        "data": {"thing2": {"value": "您的诉求有新进展"}, "character_string1": {"value": "#12"}},
        "url": "https://example.org/t/12",
    }
    fake_api.fail_next(TEMPLATE, 40037, "invalid template_id")
    with pytest.raises(WeChatAPIError):
        await gateway.send_template(CITIZEN, "TPL_STATUS", {})


async def test_template_fields_to_2023_rules(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI) -> None:
    """The fake refuses what WeChat would cut or refuse: first/remark, a value over 20 characters."""
    for data in ({"first": "您有新工单", "character_string1": "#12"}, {"thing3": "一" * 21}):
        with pytest.raises(WeChatAPIError) as err:
            await gateway.send_template(CITIZEN, "TPL", data)
        assert err.value.errcode == 47003
    fake_api.templates = {"TPL_KNOWN"}
    with pytest.raises(WeChatAPIError) as err:
        await gateway.send_template(CITIZEN, "TPL", {"thing3": "路灯坏了"})
    assert err.value.errcode == 40037  # not a template the account added


async def test_subscribe_message_needs_a_subscription(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI) -> None:
    data = {"character_string1": "#12", "thing2": "路灯坏了", "phrase3": "待处理"}
    with pytest.raises(WeChatAPIError) as err:
        await gateway.send_subscribe(CITIZEN, "SUB", data)
    assert err.value.errcode == 43101  # the user has not subscribed
    fake_api.grant_subscription(CITIZEN, "SUB")
    await gateway.send_subscribe(CITIZEN, "SUB", data)
    [call] = [c for c in _outbound(fake_api, "/cgi-bin/message/subscribe/bizsend") if c["errcode"] == 0]
    assert call["json"] == {"touser": CITIZEN, "template_id": "SUB",
                            "data": {k: {"value": v} for k, v in data.items()}}
    with pytest.raises(WeChatAPIError) as err:
        await gateway.send_subscribe(CITIZEN, "SUB", data)
    assert err.value.errcode == 43101  # one send per grant
    fake_api.grant_subscription(CITIZEN, "SUB", long_term=True)
    for _ in range(3):
        await gateway.send_subscribe(CITIZEN, "SUB", data)
    fake_api.grant_subscription(CITIZEN, "SUB")
    with pytest.raises(WeChatAPIError) as err:
        await gateway.send_subscribe(CITIZEN, "SUB", {"phrase3": "已经办结了吗"})
    assert err.value.errcode == 47003  # a phrase: at most 5 Chinese characters
    fake_api.subscribe_templates = {"SUB_RECEPTION"}
    fake_api.grant_subscription(CITIZEN, "SUB")
    with pytest.raises(WeChatAPIError) as err:
        await gateway.send_subscribe(CITIZEN, "SUB", data)
    assert err.value.errcode == 40037  # not a template the account chose


async def test_create_qrcode_returns_png(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI) -> None:
    png = await gateway.create_qrcode("station:S01")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert width == height > 100
    # a real PNG: its image data decompresses to one filter byte + one byte per pixel per row
    idat_len = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    assert len(zlib.decompress(png[41:41 + idat_len])) == height * (width + 1)
    create = _outbound(fake_api, "/cgi-bin/qrcode/create")[0]
    assert create["json"] == {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "station:S01"}}}
    show = _outbound(fake_api, "/cgi-bin/showqrcode")[0]
    assert show["query"]["ticket"].startswith("gQ")


async def test_network_failure_is_a_wechat_api_error(kv: MemoryKeyValueStore, caplog: pytest.LogCaptureFixture) -> None:
    gw = HttpWeChatGateway(_settings("http://127.0.0.1:9"), kv)  # nothing listens on the discard port
    try:
        with pytest.raises(WeChatAPIError) as err:
            await gw.send_text(CITIZEN, "x")
    finally:
        await gw.aclose()
    assert err.value.errcode == -1
    assert "test-secret" not in str(err.value) and "test-secret" not in caplog.text


async def test_fake_calls_endpoint_for_the_simulator(gateway: HttpWeChatGateway, fake_api: FakeWeChatAPI, fake_api_client: TestClient) -> None:
    await gateway.send_text(CITIZEN, "一")
    await gateway.send_text("oSomeoneElse_0000000000", "别人的")
    fake_api.fail_next(SEND, 45015, "response out of time limit")
    with pytest.raises(WeChatAPIError):
        await gateway.send_text(CITIZEN, "失败的")
    await gateway.send_template(CITIZEN, "TPL", {"character_string1": "#3"})
    resp = await fake_api_client.get("/_fake/calls", params={"openid": CITIZEN, "since": 0})
    page = await resp.json()
    assert [(m["msgtype"], m["text"]) for m in page["messages"]] == [("text", "一"), ("template", "")]
    assert page["messages"][1]["data"] == {"character_string1": "#3"}
    assert page["next"] == len(fake_api.calls)
    resp = await fake_api_client.get("/_fake/calls", params={"openid": CITIZEN, "since": page["next"]})
    assert (await resp.json())["messages"] == []
    resp = await fake_api_client.get("/_fake/calls", params={"openid": CITIZEN, "all": "1"})
    assert [m["errcode"] for m in (await resp.json())["messages"]] == [0, 45015, 0]


async def test_token_manager_invalidate_keeps_a_newer_token(kv: MemoryKeyValueStore) -> None:
    fetched = iter(["t1", "t2", "t3"])

    async def fetch() -> tuple[str, int]:
        return next(fetched), 7200

    tokens = AccessTokenManager(kv, fetch)
    assert await tokens.get() == "t1"
    await tokens.invalidate("t1")
    assert await tokens.get() == "t2"
    await tokens.invalidate("t1")  # a late caller with the old token must not drop t2
    assert await tokens.get() == "t2"


async def test_token_manager_concurrent_first_use(kv: MemoryKeyValueStore) -> None:
    fetches = 0
    release = asyncio.Event()

    async def fetch() -> tuple[str, int]:
        nonlocal fetches
        fetches += 1
        await release.wait()
        return "tok", 7200

    tokens = AccessTokenManager(kv, fetch)
    waiters = [asyncio.create_task(tokens.get()) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == ["tok"] * 10
    assert fetches == 1
