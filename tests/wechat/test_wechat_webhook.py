"""The webhook end to end through aiohttp's test server, with a recording handler."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.core.inbound import FIRST_DELIVERY, Inbound
from bot.core.keys import DEDUPE_EPOCH, DEDUPE_PREFIX
from bot.core.ports import StoreUnavailable
from bot.settings import Settings
from bot.texts import default_texts
from bot.webhook import WEBHOOK_KEY, add_webhook_routes
from bot.wechat.crypto import MessageCrypto
from bot.wechat.inbound import check_xml
from bot.wechat.platform import (
    event_xml,
    location_xml,
    message_xml,
    open_reply,
    sign,
    signed_request,
    text_xml,
    verify_query,
)
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
        self.first_delivery: list[bool] = []  # FIRST_DELIVERY as each handling saw it
        self.pushed: list[tuple[Inbound, str]] = []
        self.gate = asyncio.Event()  # "slow" messages wait for it
        self.kept: dict[str, Inbound] = {}
        self.keep_fails = False

    async def handle(self, inbound: Inbound) -> str | None:
        self.handled.append(inbound)
        self.first_delivery.append(FIRST_DELIVERY.get())
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

    # the webhook's LateMessages: what was kept past the deadline, and not yet answered
    async def keep(self, inbound: Inbound) -> None:
        if self.keep_fails:
            raise StoreUnavailable("database down")
        self.kept[inbound.dedupe_key] = inbound

    async def answered(self, inbound: Inbound, reply: str | None) -> None:
        if reply:
            self.pushed.append((inbound, reply))
        self.kept.pop(inbound.dedupe_key, None)


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
        add_webhook_routes(app, settings=settings, kv=kv, handle=recorder.handle, late=recorder)
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


async def test_only_a_first_claim_in_a_store_older_than_retries_counts_as_first_delivery(h: Harness) -> None:
    """A first delivery skips the exactly-once record lookup; a retry after its owner died, or any
    message while the store's claims are younger than dedupe_ttl (it came back empty), does not."""
    await h.reply(text_xml(CITIZEN, ACCOUNT, "新的存储", msg_id=311))
    assert h.recorder.first_delivery == [False]  # the store's claims just began: a retry may come
    await h.kv.set(DEDUPE_EPOCH, repr(time.time() - h.settings.dedupe_ttl - 1))
    xml = text_xml(CITIZEN, ACCOUNT, "第一次", msg_id=312)
    await h.reply(xml)
    assert h.recorder.first_delivery[-1] is True
    await h.kv.delete(DEDUPE_PREFIX + h.recorder.handled[-1].dedupe_key)  # its owner died: lease ran out
    await h.reply(xml)
    assert len(h.recorder.handled) == 3 and h.recorder.first_delivery[-1] is False
    h.kv._data.clear()  # the store came back empty: even an unseen claim may be a retry
    await h.reply(text_xml(CITIZEN, ACCOUNT, "丢了以后", msg_id=313))
    assert h.recorder.first_delivery[-1] is False


# --- deadline and failures ------------------------------------------------------------------------
async def test_slow_handler_answers_success_then_pushes(harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(reply_deadline=0.01)
    xml = text_xml(CITIZEN, ACCOUNT, "slow 路灯", msg_id=401)
    assert await h.post(xml, encrypted=True) == (200, "success")
    assert list(h.recorder.kept) == ["msg:401"]  # kept before WeChat was told `success`
    assert h.recorder.pushed == []
    assert await h.post(xml, encrypted=True) == (200, "success")  # WeChat's retry while still running
    h.recorder.gate.set()
    await h.webhook.drain(timeout=30)
    [(inbound, text)] = h.recorder.pushed
    assert inbound.msg_id == "401" and text == "收到：slow 路灯"
    assert h.recorder.kept == {}  # answered: forgotten with the push
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


async def test_late_handler_exception_keeps_the_message_to_be_handled_again(
        harness_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    h = await harness_factory(reply_deadline=0.01)
    assert await h.post(text_xml(CITIZEN, ACCOUNT, "slow boom", msg_id=403)) == (200, "success")
    h.recorder.gate.set()
    await h.webhook.drain(timeout=30)
    assert h.recorder.pushed == []  # no apology: WeChat will not resend it, the replay job will
    assert list(h.recorder.kept) == ["msg:403"]
    assert any("handled again later" in r.getMessage() for r in caplog.records)


async def test_late_message_that_cannot_be_kept_is_503_and_run_again_on_the_retry(
        harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(reply_deadline=0.01)
    h.recorder.keep_fails = True
    xml = text_xml(CITIZEN, ACCOUNT, "slow boom", msg_id=405)
    assert (await h.post(xml))[0] == 503  # not kept: WeChat must send it again
    h.recorder.gate.set()
    await h.webhook.drain(timeout=30)
    h.recorder.keep_fails = False
    assert (await h.post(xml))[0] == 200  # the failed run dropped its claim: run again
    await h.webhook.drain(timeout=30)
    assert len(h.recorder.handled) == 2


async def test_late_reply_that_cannot_be_stored_is_logged_not_raised(
        harness_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    h = await harness_factory(reply_deadline=0.01)

    async def failing_answered(inbound: Inbound, reply: str | None) -> None:
        raise StoreUnavailable("database down")

    h.recorder.answered = failing_answered  # type: ignore[method-assign]
    assert await h.post(text_xml(CITIZEN, ACCOUNT, "slow", msg_id=404)) == (200, "success")
    h.recorder.gate.set()
    await h.webhook.drain(timeout=30)
    assert any("late reply" in r.getMessage() and "not stored" in r.getMessage() for r in caplog.records)
    assert list(h.recorder.kept) == ["msg:404"]  # still kept: the replay answers it
    assert CITIZEN not in caplog.text


# --- safe mode cannot be bypassed -----------------------------------------------------------------
async def test_plaintext_is_refused_in_safe_mode(h: Harness) -> None:
    forged = text_xml("oDeputy_0000000000000000", ACCOUNT, "#1001 请先转账500元押金", msg_id=701)
    status, _ = await h.post(forged, encrypted=False)  # `signature` is right: it does not cover the body
    assert status == 403
    await _nothing_stored(h, "701")


async def test_compatible_mode_body_is_read_through_its_encrypted_part_only(h: Harness) -> None:
    genuine = signed_request(TOKEN, text_xml(CITIZEN, ACCOUNT, "路灯坏了", msg_id=702), crypto=h.crypto)
    encrypt = check_xml(genuine.body).findtext("Encrypt")
    # 兼容模式: the plaintext fields travel beside Encrypt; a forger can change them, not Encrypt
    body = (f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>oDeputy_0000000000000000</FromUserName>"
            f"<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>请先转账</Content><MsgId>999</MsgId>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
    resp = await h.client.post("/wechat", params=genuine.query, data=body.encode())
    assert resp.status == 200
    [inbound] = h.recorder.handled
    assert (inbound.openid, inbound.text, inbound.msg_id) == (CITIZEN, "路灯坏了", "702")


async def test_plaintext_mode_without_a_key_warns_once_at_start(harness_factory: Callable[..., Any],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.webhook")
    await harness_factory()  # safe mode: nothing to warn about
    assert not [r for r in caplog.records if "safe mode is off" in r.getMessage()]
    await harness_factory(wechat_aes_key="")
    assert len([r for r in caplog.records if "safe mode is off" in r.getMessage()]) == 1


@pytest.mark.parametrize("skew", [-301, 301, -86400, 365 * 86400], ids=["5min-old", "5min-ahead", "day-old", "year-ahead"])
async def test_signed_request_outside_the_timestamp_window_is_403(hm: Harness, skew: int) -> None:
    xml = text_xml(CITIZEN, ACCOUNT, "你好", msg_id=703)
    status, _ = await hm.post(xml, timestamp=str(int(time.time()) + skew))
    assert status == 403
    await _nothing_stored(hm, "703")


async def test_timestamp_inside_the_window_is_accepted_and_the_window_is_a_setting(
        harness_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    h = await harness_factory()
    assert (await h.post(text_xml(CITIZEN, ACCOUNT, "你好", msg_id=704), timestamp=str(int(time.time()) - 200)))[0] == 200
    assert (await h.post(text_xml(CITIZEN, ACCOUNT, "你好", msg_id=705), timestamp="yesterday"))[0] == 403
    narrow = await harness_factory(wechat_timestamp_window=10)
    assert (await narrow.post(text_xml(CITIZEN, ACCOUNT, "你好", msg_id=706), timestamp=str(int(time.time()) - 60)))[0] == 403
    monkeypatch.setenv("ZTC_WECHAT_TIMESTAMP_WINDOW", "42")
    assert Settings(_env_file=None).wechat_timestamp_window == 42


async def test_stale_url_verification_is_403(h: Harness) -> None:
    resp = await h.client.get("/wechat", params=verify_query(TOKEN, "echo", timestamp=str(int(time.time()) - 3600)))
    assert resp.status == 403 and "echo" not in await resp.text()


# --- bounded fields -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "xml",
    [
        text_xml("o" * 1000, ACCOUNT, "你好", msg_id=801),
        text_xml("o" * 65, ACCOUNT, "你好", msg_id=801),
        text_xml(CITIZEN, "g" * 65, "你好", msg_id=801),
        text_xml(CITIZEN, ACCOUNT, "你好", msg_id="8" * 33),
        text_xml(CITIZEN, ACCOUNT, "长" * 2731, msg_id=801),  # 8193 bytes
        event_xml(CITIZEN, ACCOUNT, "VIEW", "http://x/" + "a" * 1016, created_at=1700000900),
        location_xml(CITIZEN, ACCOUNT, 31.1, 120.6, "路" * 2731, msg_id=801),
    ],
    ids=["openid-1000", "openid-65", "account-65", "msgid-33", "content-8193-bytes", "eventkey-1025", "label-8193-bytes"],
)
async def test_oversize_field_is_400_and_nothing_stored(hm: Harness, xml: str) -> None:
    status, _ = await hm.post(xml)
    assert status == 400
    assert hm.recorder.handled == []
    assert hm.kv._data == {}  # no dedupe key, nothing at all


async def test_fields_at_their_bounds_are_accepted(hm: Harness) -> None:
    await hm.reply(text_xml("o" * 64, "g" * 64, "长" * 2730 + "ab", msg_id="9" * 32))  # 8192 bytes
    await hm.reply(event_xml(CITIZEN, ACCOUNT, "VIEW", "http://x/" + "a" * 1015, created_at=1700000901))
    assert [len(i.openid) for i in hm.recorder.handled] == [64, len(CITIZEN)]
    assert len(hm.recorder.handled[0].text.encode()) == 8192


# --- de-duplication without MsgId -----------------------------------------------------------------
async def test_two_texts_without_msgid_in_the_same_second_are_two_messages(hm: Harness) -> None:
    first = text_xml(CITIZEN, ACCOUNT, "路灯坏了", msg_id="", created_at=1700001000)
    second = text_xml(CITIZEN, ACCOUNT, "在村口", msg_id="", created_at=1700001000)
    assert (await hm.reply(first) or {}).get("Content") == "收到：路灯坏了"
    assert (await hm.reply(second) or {}).get("Content") == "收到：在村口"
    assert (await hm.reply(first) or {}).get("Content") == "收到：路灯坏了"  # WeChat's retry: not rerun
    assert [i.text for i in hm.recorder.handled] == ["路灯坏了", "在村口"]


async def test_events_in_the_same_second_with_different_keys_are_two_events(h: Harness) -> None:
    await h.reply(event_xml(CITIZEN, ACCOUNT, "CLICK", "report", created_at=1700001001))
    await h.reply(event_xml(CITIZEN, ACCOUNT, "CLICK", "my_tickets", created_at=1700001001))
    await h.reply(event_xml(CITIZEN, ACCOUNT, "CLICK", "report", created_at=1700001001))  # retry
    assert [i.event_key for i in h.recorder.handled] == ["report", "my_tickets"]


async def test_store_outage_inside_the_handler_is_503_and_the_retry_runs_again(h: Harness) -> None:
    from bot.core.ports import StoreUnavailable

    real_handle, down = h.recorder.handle, [True]

    async def handle(inbound: Inbound) -> str | None:
        if down[0]:
            raise StoreUnavailable("redis: ConnectionError")  # e.g. the user's lock
        return await real_handle(inbound)

    h.webhook._handle = handle
    xml = text_xml(CITIZEN, ACCOUNT, "路灯坏了", msg_id=903)
    assert (await h.post(xml))[0] == 503
    down[0] = False
    assert (await h.reply(xml) or {}).get("Content") == "收到：路灯坏了"  # not `success`: it never ran


# --- the pending marker is a lease ----------------------------------------------------------------
def kill_owner(h: Harness) -> None:
    """What kill -9 does to a message's owner: its handler (and the lease renewal) stop running."""
    for task in list(h.webhook._tasks):
        task.cancel()


async def test_retry_after_the_owner_died_is_handled_again(harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(reply_deadline=0.3, dedupe_pending_grace=0.3)
    xml = text_xml(CITIZEN, ACCOUNT, "slow 是", msg_id=901)
    assert await h.post(xml) == (200, "success")  # past the deadline: still running
    kill_owner(h)
    await asyncio.sleep(0)
    assert await h.post(xml) == (200, "success")  # inside the lease nobody can tell it died
    h.recorder.gate.set()

    async def lease_lapsed() -> bool:
        return await h.kv.get(DEDUPE_PREFIX + "msg:901") is None

    assert await eventually(lease_lapsed)
    reply = await h.reply(xml)  # WeChat's next retry is handled, not answered `success` forever
    await h.webhook.drain(timeout=30)
    assert len(h.recorder.handled) == 2
    answered = [reply["Content"] if reply else None] + [t for _, t in h.recorder.pushed]
    assert answered in (["收到：slow 是"], [None, "收到：slow 是"])  # passive, or pushed past the deadline


async def test_pending_marker_is_renewed_while_its_handler_runs(harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(reply_deadline=0.05, dedupe_pending_grace=0.25)  # lease 0.3 s
    xml = text_xml(CITIZEN, ACCOUNT, "slow 是", msg_id=902)
    assert await h.post(xml) == (200, "success")
    await asyncio.sleep(1.0)  # more than three leases
    assert await h.post(xml) == (200, "success")  # still pending: not run twice
    h.recorder.gate.set()
    await h.webhook.drain(timeout=30)
    assert await h.post(xml) == (200, "success")  # pushed, so a later retry is not rerun either
    assert len(h.recorder.handled) == 1 and [t for _, t in h.recorder.pushed] == ["收到：slow 是"]


async def eventually(predicate: Callable[[], Any], limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.02)
    return False
