"""A sweep of hostile requests against the running app in safe mode (the real BotApp on SQLite and
in-process stores, a fake WeChat API): each is refused with its status and leaves no trace — no
handler run, no row, no key, no call to WeChat. A genuine message afterwards still gets through."""
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.bootstrap import BotApp
from bot.settings import Settings
from bot.webhook import WEBHOOK_KEY
from bot.wechat.crypto import MessageCrypto
from bot.wechat.fake_api import FakeWeChatAPI
from bot.wechat.inbound import check_xml
from bot.wechat.platform import event_xml, open_reply, sign, signed_request, text_xml
from wechat_samples import BILLION_LAUGHS, EXTERNAL_ENTITY

TOKEN = "hostiletoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxhostile00000001"
ACCOUNT = "gh_zhitongche"
CITIZEN = "oCitizen_hostile_0000000"
DEPUTY = "oDeputy_hostile_00000000"


@dataclass
class Running:
    bot: BotApp
    client: TestClient
    api: FakeWeChatAPI
    crypto: MessageCrypto


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    api = FakeWeChatAPI(appid=APPID)
    api_server = TestServer(api.create_app())
    await api_server.start_server()
    settings = Settings(
        _env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'hostile.db'}", redis_url="",
        wechat_token=TOKEN, wechat_aes_key=AES_KEY, wechat_appid=APPID,
        wechat_api_base=str(api_server.make_url("")).rstrip("/"),
    )
    bot = BotApp(settings)
    await bot.start()
    client = TestClient(TestServer(bot.web_app))
    await client.start_server()
    try:
        yield Running(bot, client, api, MessageCrypto(TOKEN, AES_KEY, APPID))
    finally:
        await client.close()
        await bot.stop()
        await api_server.close()


def _now(offset: int = 0) -> str:
    return str(int(time.time()) + offset)


def _hostile(crypto: MessageCrypto) -> list[tuple[str, str, dict[str, str], bytes, int]]:
    """(name, method, query, body, expected status)."""
    forged = text_xml(DEPUTY, ACCOUNT, "#1001 请先转账500元押金", msg_id=1)
    plain = signed_request(TOKEN, forged)  # a correct `signature`: it covers no body
    genuine = signed_request(TOKEN, text_xml(CITIZEN, ACCOUNT, "你好", msg_id=2), crypto=crypto)
    other = signed_request(TOKEN, forged, crypto=crypto)
    other_encrypt = check_xml(other.body).findtext("Encrypt", "")
    swapped = genuine.body.replace(check_xml(genuine.body).findtext("Encrypt", ""), other_encrypt)
    foreign = signed_request(TOKEN, forged, crypto=MessageCrypto(TOKEN, AES_KEY, "wxsomeoneelse0001"))
    by_stranger = signed_request("not-our-token", forged, crypto=MessageCrypto("not-our-token", AES_KEY, APPID))

    def enc(xml: str, **kw: str) -> tuple[dict[str, str], bytes]:
        req = signed_request(TOKEN, xml, crypto=crypto, **kw)
        return req.query, req.body.encode()

    no_msg_signature = {k: v for k, v in genuine.query.items() if k != "msg_signature"}
    cases = [
        ("plaintext-in-safe-mode", "POST", plain.query, plain.body.encode(), 403),
        ("plaintext-claiming-aes", "POST", plain.query | {"encrypt_type": "aes"}, plain.body.encode(), 403),
        ("no-msg-signature", "POST", no_msg_signature, genuine.body.encode(), 403),
        ("bad-msg-signature", "POST", genuine.query | {"msg_signature": "0" * 40}, genuine.body.encode(), 403),
        ("swapped-ciphertext", "POST", genuine.query, swapped.encode(), 403),
        ("signed-by-a-stranger", "POST", by_stranger.query, by_stranger.body.encode(), 403),
        ("no-query", "POST", {}, genuine.body.encode(), 403),
        ("day-old", "POST", *enc(forged, timestamp=_now(-86400)), 403),
        ("year-ahead", "POST", *enc(forged, timestamp=_now(365 * 86400)), 403),
        ("timestamp-not-a-number", "POST", genuine.query | {"timestamp": "1e9"}, genuine.body.encode(), 403),
        ("other-appid", "POST", foreign.query, foreign.body.encode(), 400),
        ("openid-1000", "POST", *enc(text_xml("o" * 1000, ACCOUNT, "你好", msg_id=3)), 400),
        ("content-9000-bytes", "POST", *enc(text_xml(CITIZEN, ACCOUNT, "长" * 3000, msg_id=4)), 400),
        ("eventkey-2000", "POST", *enc(event_xml(CITIZEN, ACCOUNT, "CLICK", "k" * 2000)), 400),
        ("msgid-100", "POST", *enc(text_xml(CITIZEN, ACCOUNT, "你好", msg_id="9" * 100)), 400),
        ("billion-laughs-inside", "POST", *enc(BILLION_LAUGHS), 400),
        ("external-entity-envelope", "POST", genuine.query, EXTERNAL_ENTITY.encode(), 400),
        ("billion-laughs-envelope", "POST", genuine.query, BILLION_LAUGHS.encode(), 400),
        ("empty-body", "POST", genuine.query, b"", 400),
        ("huge-body", "POST", genuine.query, b"<xml>" + b"a" * (2 * 1024 * 1024) + b"</xml>", 413),
        ("put", "PUT", genuine.query, genuine.body.encode(), 405),
        ("delete", "DELETE", genuine.query, b"", 405),
        ("patch", "PATCH", genuine.query, genuine.body.encode(), 405),
        ("get-bad-signature", "GET", {"signature": "0" * 40, "timestamp": _now(), "nonce": "1", "echostr": "e"},
         b"", 403),
        ("get-stale", "GET", {"signature": sign(TOKEN, _now(-3600), "1"), "timestamp": _now(-3600), "nonce": "1",
                              "echostr": "e"}, b"", 403),
    ]
    return cases


async def _traces(running: Running) -> dict[str, object]:
    """Everything a message could leave behind."""
    async with running.bot.uow_factory() as uow:
        tickets = [t for o in (CITIZEN, DEPUTY, "o" * 1000) for t in await uow.tickets.list_for_citizen(o)]
        citizens = [c for o in (CITIZEN, DEPUTY) if (c := await uow.citizens.get(o)) is not None]
        outbox = list(await uow.outbox.list(("pending", "held", "failed", "sent")))
    return {
        "tickets": tickets,
        "citizens": citizens,
        "outbox": outbox,
        "keys": sorted(running.bot.kv._data),  # type: ignore[attr-defined]
        "wechat_calls": running.api.messages(include_failed=True),
    }


async def test_hostile_requests_are_refused_and_leave_no_trace(running: Running) -> None:
    before = await _traces(running)
    got = {}
    for name, method, query, body, _ in _hostile(running.crypto):
        resp = await running.client.request(method, "/wechat", params=query, data=body)
        got[name] = resp.status
        if method == "GET":
            assert await resp.text() != "e"  # never the echostr
    assert got == {name: status for name, _, _, _, status in _hostile(running.crypto)}
    await running.bot.web_app[WEBHOOK_KEY].drain(timeout=30)
    assert await _traces(running) == before

    # the control: a genuine message from the same sweep's citizen is handled
    genuine = signed_request(TOKEN, text_xml(CITIZEN, ACCOUNT, "你好", msg_id=5), crypto=running.crypto)
    resp = await running.client.post("/wechat", params=genuine.query, data=genuine.body.encode())
    assert resp.status == 200
    reply = open_reply(await resp.text(), running.crypto)
    assert reply is not None and reply["ToUserName"] == CITIZEN
    assert (await _traces(running))["keys"] != before["keys"]
