"""The webhook end to end through aiohttp's test server, with a recording handler."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.messages import Inbound
from bot.settings import Settings
from bot.texts import default_texts
from bot.webhook import DEDUPE_PREFIX, WEBHOOK_KEY, add_webhook_routes
from bot.wechat.crypto import MessageCrypto
from bot.wechat.platform import event_xml, message_xml, open_reply, sign, signed_request, text_xml, verify_query
from storage.kv import MemoryKeyValueStore
from wechat_samples import BILLION_LAUGHS, EXTERNAL_ENTITY, load_vectors

TOKEN = "testtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxtestappid000001"
ACCOUNT = "gh_zhitongche"
CITIZEN = "oCitizen_abcdefghijklmnop"
VECTORS = {v["id"]: v for v in load_vectors()}
OLD_VECTORS_WINDOW = 100 * 365 * 86400  # the official vectors were signed years ago


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        wechat_token=TOKEN, wechat_aes_key=AES_KEY, wechat_appid=APPID, reply_deadline=30.0, dedupe_ttl=600
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


class Recorder:
    """The application stand-in: records what it is given and answers by the text it gets."""

    def __init__(self) -> None:
        self.handled: list[Inbound] = []
        self.pushed: list[tuple[Inbound, str]] = []
        self.gate = asyncio.Event()  # "slow" messages wait for it

    async def handle(self, inbound: Inbound) -> str | None:
        self.handled.append(inbound)
        if inbound.text.startswith("slow"):
            await self.gate.wait()
        if inbound.text.endswith("boom"):
            raise RuntimeError("handler exploded")
        if inbound.text == "silent":
            return None
        if inbound.kind == "event":
            return f"event:{inbound.event}:{inbound.scene}"
        if inbound.kind == "unknown":
            return "暂不支持这种消息"
        return f"收到：{inbound.text}"

    async def push_late(self, inbound: Inbound, text: str) -> None:
        self.pushed.append((inbound, text))


class Harness:
    def __init__(self, client: TestClient, recorder: Recorder, kv: MemoryKeyValueStore, settings: Settings) -> None:
        self.client, self.recorder, self.kv, self.settings = client, recorder, kv, settings
        self.crypto = MessageCrypto(settings.wechat_token, settings.wechat_aes_key or AES_KEY, settings.wechat_appid)

    @property
    def webhook(self) -> Any:
        return self.client.server.app[WEBHOOK_KEY]

    @property
    def safe_mode(self) -> bool:
        return bool(self.settings.wechat_aes_key)

    async def post(self, xml: str, *, encrypted: bool | None = None, **kw: Any) -> tuple[int, str]:
        """Posted as WeChat would: encrypted when the server runs in safe mode, unless told."""
        encrypted = self.safe_mode if encrypted is None else encrypted
        req = signed_request(TOKEN, xml, crypto=self.crypto if encrypted else None, **kw)
        resp = await self.client.post("/wechat", params=req.query, data=req.body.encode("utf-8"))
        return resp.status, await resp.text()

    async def reply(self, xml: str, *, encrypted: bool | None = None) -> dict[str, str] | None:
        status, body = await self.post(xml, encrypted=encrypted)
        assert status == 200, body
        return open_reply(body, self.crypto)


@pytest.fixture
async def harness_factory() -> AsyncIterator[Callable[..., Any]]:
    harnesses: list[Harness] = []

    async def make(**overrides: Any) -> Harness:
        settings = make_settings(**overrides)
        recorder, kv = Recorder(), MemoryKeyValueStore()
        app = web.Application()
        add_webhook_routes(app, settings=settings, kv=kv, handle=recorder.handle, push_late=recorder.push_late)
        client = TestClient(TestServer(app))
        await client.start_server()
        harnesses.append(Harness(client, recorder, kv, settings))
        return harnesses[-1]

    yield make
    for harness in harnesses:
        harness.recorder.gate.set()  # release any handler a failed test left waiting
        await harness.client.close()


@pytest.fixture
async def h(harness_factory: Callable[..., Any]) -> Harness:
    """Safe mode (an EncodingAESKey is set), as in production."""
    return await harness_factory()


@pytest.fixture(params=["plain", "aes"])
async def hm(request: pytest.FixtureRequest, harness_factory: Callable[..., Any]) -> Harness:
    """Either mode: plaintext (no AES key) or safe mode, posting as that mode's WeChat does."""
    return await harness_factory(**({"wechat_aes_key": ""} if request.param == "plain" else {}))


# --- GET verification -----------------------------------------------------------------------------
async def test_get_echostr_plain(h: Harness) -> None:
    resp = await h.client.get("/wechat", params=verify_query(TOKEN, "echo-123"))
    assert resp.status == 200 and await resp.text() == "echo-123"
    bad = verify_query(TOKEN, "echo-123") | {"signature": "0" * 40}
    resp = await h.client.get("/wechat", params=bad)
    assert resp.status == 403 and "echo-123" not in await resp.text()
    resp = await h.client.get("/wechat", params={"echostr": "x"})
    assert resp.status == 403


async def test_get_echostr_encrypted_with_msg_signature(harness_factory: Callable[..., Any]) -> None:
    v = VECTORS["wecom_official_verify_url"]
    h = await harness_factory(wechat_token=v["token"], wechat_aes_key=v["encoding_aes_key"], wechat_appid=v["receive_id"],
                              wechat_timestamp_window=OLD_VECTORS_WINDOW)
    params = {"msg_signature": v["msg_signature"], "timestamp": v["timestamp"], "nonce": v["nonce"], "echostr": v["encrypt"]}
    resp = await h.client.get("/wechat", params=params)
    assert resp.status == 200 and await resp.text() == v["decrypted_plaintext"]
    resp = await h.client.get("/wechat", params=params | {"nonce": "1"})
    assert resp.status == 403


# --- POST happy paths -----------------------------------------------------------------------------
async def test_text_message(hm: Harness) -> None:
    h = hm
    reply = await h.reply(text_xml(CITIZEN, ACCOUNT, "我们村口的路灯坏了一个星期了", msg_id=101))
    assert reply is not None
    assert reply["MsgType"] == "text" and reply["Content"] == "收到：我们村口的路灯坏了一个星期了"
    assert reply["FromUserName"] == ACCOUNT and reply["ToUserName"] == CITIZEN
    [inbound] = h.recorder.handled
    assert (inbound.openid, inbound.kind, inbound.msg_id) == (CITIZEN, "text", "101")


async def test_aes_text_message_gets_encrypted_reply(h: Harness) -> None:
    status, body = await h.post(text_xml(CITIZEN, ACCOUNT, "路灯坏了", msg_id=102), encrypted=True)
    assert status == 200 and "<Encrypt>" in body and "路灯" not in body
    reply = open_reply(body, h.crypto)
    assert reply is not None and reply["Content"] == "收到：路灯坏了" and reply["ToUserName"] == CITIZEN
    assert [i.text for i in h.recorder.handled] == ["路灯坏了"]


async def test_aes_official_vector_reaches_the_handler(harness_factory: Callable[..., Any]) -> None:
    v = VECTORS["mp_official_decrypt_msg"]
    h = await harness_factory(wechat_token=v["token"], wechat_aes_key=v["encoding_aes_key"], wechat_appid=v["receive_id"],
                              wechat_timestamp_window=OLD_VECTORS_WINDOW)
    query = {"signature": sign(v["token"], v["timestamp"], v["nonce"]), "timestamp": v["timestamp"],
             "nonce": v["nonce"], "encrypt_type": "aes", "msg_signature": v["msg_signature"]}
    resp = await h.client.post("/wechat", params=query, data=v["request_xml"])
    assert resp.status == 200
    reply = open_reply(await resp.text(), h.crypto)
    assert reply is not None and reply["Content"] == "收到：abcdteT" and reply["FromUserName"] == "gh_10f6c3c3ac5a"
    [inbound] = h.recorder.handled
    assert inbound.openid == "oyORnuP8q7ou2gfYjqLzSIWZf0rs" and inbound.msg_id == "6054768590064713728"


async def test_plaintext_works_without_aes_configured(harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(wechat_aes_key="")
    reply = await h.reply(text_xml(CITIZEN, ACCOUNT, "你好", msg_id=103))
    assert reply is not None and reply["Content"] == "收到：你好"
    status, _ = await h.post(text_xml(CITIZEN, ACCOUNT, "你好", msg_id=104), encrypted=True)
    assert status == 400 and len(h.recorder.handled) == 1


async def test_none_reply_is_success(hm: Harness) -> None:
    h = hm
    assert await h.post(text_xml(CITIZEN, ACCOUNT, "silent", msg_id=105)) == (200, "success")
    assert await h.post(text_xml(CITIZEN, ACCOUNT, "silent", msg_id=105)) == (200, "success")
    assert len(h.recorder.handled) == 1


async def test_reply_text_cannot_break_out_of_cdata(hm: Harness) -> None:
    h = hm
    sneaky = "]]></Content><MsgType><![CDATA[news]]></MsgType><Content><![CDATA["
    reply = await h.reply(text_xml(CITIZEN, ACCOUNT, sneaky, msg_id=106))
    assert reply is not None and reply["MsgType"] == "text" and reply["Content"] == "收到：" + sneaky


async def test_unknown_type_reaches_handler_as_unknown(h: Harness) -> None:
    reply = await h.reply(message_xml(CITIZEN, ACCOUNT, "miniprogrampage", msg_id=107, Title="小程序"))
    assert reply is not None and reply["Content"] == "暂不支持这种消息"
    [inbound] = h.recorder.handled
    assert inbound.kind == "unknown" and inbound.raw_type == "miniprogrampage"


async def test_station_qr_follow_event(h: Harness) -> None:
    reply = await h.reply(event_xml(CITIZEN, ACCOUNT, "subscribe", "qrscene_station:S01", created_at=1700000001), encrypted=True)
    assert reply is not None and reply["Content"] == "event:subscribe:station:S01"


# --- refusals -------------------------------------------------------------------------------------
async def _nothing_stored(h: Harness, msg_id: str) -> None:
    assert h.recorder.handled == []
    assert await h.kv.get(DEDUPE_PREFIX + f"msg:{msg_id}") is None


async def test_wrong_signature_is_403_and_nothing_stored(harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(wechat_aes_key="")  # plaintext mode: `signature` is all there is
    xml = text_xml(CITIZEN, ACCOUNT, "hi", msg_id=201)
    req = signed_request(TOKEN, xml)
    for query in (req.query | {"signature": "0" * 40}, {}, {k: v for k, v in req.query.items() if k != "nonce"}):
        resp = await h.client.post("/wechat", params=query, data=xml)
        assert resp.status == 403
    signed_by_other = signed_request("not-our-token", xml)
    resp = await h.client.post("/wechat", params=signed_by_other.query, data=xml)
    assert resp.status == 403
    await _nothing_stored(h, "201")


async def test_wrong_msg_signature_is_403(h: Harness) -> None:
    req = signed_request(TOKEN, text_xml(CITIZEN, ACCOUNT, "hi", msg_id=202), crypto=h.crypto)
    resp = await h.client.post("/wechat", params=req.query | {"msg_signature": "1" * 40}, data=req.body)
    assert resp.status == 403
    await _nothing_stored(h, "202")


@pytest.mark.parametrize(
    "xml",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, "<xml><FromUserName>oX", "完全不是XML", ""],
    ids=["billion-laughs", "external-entity", "broken", "garbage", "empty"],
)
async def test_bad_or_hostile_xml_is_400(hm: Harness, xml: str) -> None:
    status, _ = await hm.post(xml)
    assert status == 400
    await _nothing_stored(hm, "203")


async def test_hostile_envelope_is_400(h: Harness) -> None:
    req = signed_request(TOKEN, text_xml(CITIZEN, ACCOUNT, "x", msg_id=204), crypto=h.crypto)
    resp = await h.client.post("/wechat", params=req.query, data=EXTERNAL_ENTITY)
    assert resp.status == 400
    assert h.recorder.handled == []


async def test_body_over_limit_is_413(h: Harness) -> None:
    big = text_xml(CITIZEN, ACCOUNT, "长" * 100_000, msg_id=205)  # ~300 KB of UTF-8
    assert len(big.encode()) > 256 * 1024
    status, _ = await h.post(big)
    assert status == 413

    async def chunked():  # no Content-Length: the limit is enforced while reading
        data = big.encode()
        for i in range(0, len(data), 16 * 1024):
            yield data[i:i + 16 * 1024]

    req = signed_request(TOKEN, big)
    resp = await h.client.post("/wechat", params=req.query, data=chunked())
    assert resp.status == 413
    await _nothing_stored(h, "205")


async def test_body_just_under_limit_is_read(harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(max_body_bytes=4096, wechat_aes_key="")  # plaintext: the body is the XML
    reply = await h.reply(text_xml(CITIZEN, ACCOUNT, "a" * 3000, msg_id=206))
    assert reply is not None
    status, _ = await h.post(text_xml(CITIZEN, ACCOUNT, "a" * 5000, msg_id=207))
    assert status == 413


# --- de-duplication -------------------------------------------------------------------------------
async def test_retry_of_same_msgid_runs_handler_once_and_gets_same_reply(hm: Harness) -> None:
    h = hm
    xml = text_xml(CITIZEN, ACCOUNT, "路灯坏了", msg_id=301)
    first = await h.reply(xml)
    second = await h.reply(xml)  # WeChat retries with fresh nonce/timestamp
    third = await h.reply(xml)
    assert first is not None and second is not None and third is not None
    assert first["Content"] == second["Content"] == third["Content"] == "收到：路灯坏了"
    assert len(h.recorder.handled) == 1


async def test_concurrent_duplicates_run_handler_once(h: Harness) -> None:
    xml = text_xml(CITIZEN, ACCOUNT, "同时到达", msg_id=302)
    results = await asyncio.gather(*(h.post(xml) for _ in range(5)))
    assert all(status == 200 for status, _ in results)
    assert len(h.recorder.handled) == 1
    replies = [open_reply(body, h.crypto) for _, body in results]
    assert sum(1 for r in replies if r and r["Content"] == "收到：同时到达") >= 1


async def test_events_dedupe_on_sender_and_createtime(h: Harness) -> None:
    follow = event_xml(CITIZEN, ACCOUNT, "subscribe", created_at=1700000100)
    first = await h.reply(follow)
    again = await h.reply(follow)
    assert first == again
    await h.reply(event_xml(CITIZEN, ACCOUNT, "subscribe", created_at=1700000101))  # a new follow
    await h.reply(event_xml("oOtherCitizen_0000000", ACCOUNT, "subscribe", created_at=1700000100))
    assert len(h.recorder.handled) == 3


# --- deadline and failures ------------------------------------------------------------------------
async def test_slow_handler_answers_success_then_pushes(harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(reply_deadline=0.01)
    xml = text_xml(CITIZEN, ACCOUNT, "slow 路灯", msg_id=401)
    assert await h.post(xml, encrypted=True) == (200, "success")
    assert h.recorder.pushed == []
    assert await h.post(xml, encrypted=True) == (200, "success")  # WeChat's retry while still running
    h.recorder.gate.set()
    await h.webhook.drain(timeout=30)
    [(inbound, text)] = h.recorder.pushed
    assert inbound.msg_id == "401" and text == "收到：slow 路灯"
    assert await h.post(xml, encrypted=True) == (200, "success")  # pushed, so never also passive
    assert len(h.recorder.handled) == 1 and len(h.recorder.pushed) == 1


async def test_handler_exception_gets_polite_apology(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    xml = text_xml(CITIZEN, ACCOUNT, "boom", msg_id=402)
    reply = await h.reply(xml, encrypted=True)
    apology = default_texts().get("wechat_handler_error")
    assert reply is not None and reply["Content"] == apology
    assert (await h.reply(xml, encrypted=True) or {}).get("Content") == apology  # retry: same, not rerun
    assert len(h.recorder.handled) == 1
    failure = [r for r in caplog.records if "handler failed" in r.getMessage()]
    assert failure and failure[0].exc_info is not None
    assert CITIZEN not in caplog.text and CITIZEN[:4] in failure[0].getMessage()


async def test_late_handler_exception_pushes_apology(harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(reply_deadline=0.01)
    assert await h.post(text_xml(CITIZEN, ACCOUNT, "slow boom", msg_id=403)) == (200, "success")
    h.recorder.gate.set()
    await h.webhook.drain(timeout=30)
    assert [t for _, t in h.recorder.pushed] == [default_texts().get("wechat_handler_error")]


async def test_push_late_failure_is_logged_not_raised(harness_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    h = await harness_factory(reply_deadline=0.01)

    async def failing_push(inbound: Inbound, text: str) -> None:
        raise ConnectionError("gateway down")

    h.webhook._push_late = failing_push
    assert await h.post(text_xml(CITIZEN, ACCOUNT, "slow", msg_id=404)) == (200, "success")
    h.recorder.gate.set()
    await h.webhook.drain(timeout=30)
    assert any("push_late failed" in r.getMessage() for r in caplog.records)
    assert CITIZEN not in caplog.text
