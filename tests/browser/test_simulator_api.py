"""The simulator backend over HTTP (no browser): real signed/encrypted XML reaches a wechatpy-checked
webhook, the passive reply comes back decrypted, pushes come from the fake WeChat API."""
from __future__ import annotations

import hashlib

import aiohttp
import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

from bot.settings import Settings
from bot.simulator import create_simulator_app
from simrig import AES_KEY, APPID, PUSH_TRIGGER, TOKEN, SimulatorRig, free_port, serve


async def post_send(rig: SimulatorRig, **payload) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{rig.url}/sim/send", json=payload) as r:
            assert r.status == 200
            return await r.json()


async def test_plaintext_text_message_is_signed_and_answered(rig: SimulatorRig) -> None:
    result = await post_send(rig, openid="demo-citizen-1", kind="text", text="我们村口的路灯坏了", safe=False)

    assert result["ok"] is True
    assert result["reply"]["text"] == "已收到您的消息：我们村口的路灯坏了"
    [got] = rig.webhook.received
    assert got["encrypted"] is False
    assert got["message"].source == "demo-citizen-1"
    assert got["message"].content == "我们村口的路灯坏了"
    assert got["message"].id == int(result["request"]["msg_id"])
    assert "encrypt_type" not in got["query"]
    assert got["query"]["openid"] == "demo-citizen-1"


async def test_safe_mode_encrypts_the_request_and_decrypts_the_reply(rig: SimulatorRig) -> None:
    result = await post_send(rig, openid="demo-citizen-1", kind="text", text="路灯坏了", safe=True)

    assert result["ok"] is True
    assert result["reply"] == {
        "msg_type": "text",
        "text": "已收到您的消息：路灯坏了",
        "xml": result["reply"]["xml"],
        "encrypted": True,
    }
    [got] = rig.webhook.received
    assert got["encrypted"] is True
    assert got["query"]["encrypt_type"] == "aes"
    # what went over the wire held no plaintext: only ToUserName and Encrypt
    wire = xmltodict.parse(result["request"]["body"])["xml"]
    assert set(wire) == {"ToUserName", "Encrypt"}
    assert "路灯" not in result["request"]["body"]


async def test_media_location_and_subscribe_messages_are_real_wechat_xml(rig: SimulatorRig) -> None:
    await post_send(rig, openid="demo-citizen-2", kind="image", safe=True)
    await post_send(rig, openid="demo-citizen-2", kind="voice", text="桥上的栏杆断了", safe=False)
    await post_send(rig, openid="demo-citizen-2", kind="location", label="七都镇开弦弓村", safe=True)
    sub = await post_send(rig, openid="demo-citizen-2", kind="subscribe", scene="station:QD-YM", safe=False)
    await post_send(rig, openid="demo-citizen-2", kind="scan", scene="station:SZ-FZ", safe=False)

    image, voice, location, subscribe, scan = (r["message"] for r in rig.webhook.received)
    assert image.type == "image" and image.image.startswith("http") and image.media_id
    assert voice.type == "voice" and voice.recognition == "桥上的栏杆断了" and voice.format == "amr"
    assert location.type == "location" and location.label == "七都镇开弦弓村"
    assert (subscribe.type, subscribe.event, subscribe.scene_id) == ("event", "subscribe_scan", "station:QD-YM")
    assert (scan.event, scan.scene_id) == ("scan", "station:SZ-FZ")
    assert sub["reply"]["text"] == "欢迎关注，事件 subscribe_scan，场景 station:QD-YM"


async def test_wechat_retry_resends_the_identical_request(rig: SimulatorRig) -> None:
    first = await post_send(rig, openid="demo-citizen-1", kind="text", text="重试测试", safe=True)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{rig.url}/sim/resend", json={"openid": "demo-citizen-1"}) as r:
            again = await r.json()

    assert again["ok"] is True and again["retry"] is True
    a, b = rig.webhook.received
    assert a["message"].id == b["message"].id == int(first["request"]["msg_id"])


async def test_wrong_token_shows_the_webhooks_refusal(rig: SimulatorRig) -> None:
    rig.webhook.token = "the-bot-has-another-token"

    result = await post_send(rig, openid="demo-citizen-1", kind="text", text="你好", safe=False)

    assert result["ok"] is False
    assert result["status"] == 403
    assert "403" in result["error"]
    assert rig.webhook.received == []


async def test_pushes_come_from_the_fake_api_with_their_channel(rig: SimulatorRig) -> None:
    await post_send(rig, openid="demo-citizen-1", kind="text", text=PUSH_TRIGGER, safe=False)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{rig.url}/sim/pushes", params={"since": "0"}) as r:
            first = await r.json()
        async with http.get(f"{rig.url}/sim/pushes", params={"since": str(first["next"])}) as r:
            later = await r.json()
        async with http.get(f"{rig.url}/sim/pushes", params={"since": "0", "openid": "demo-citizen-2"}) as r:
            someone_else = await r.json()

    assert [(m["openid"], m["via"], m["text"]) for m in first["messages"]] == [
        ("demo-citizen-1", "customer_service", "这是一条客服消息推送"),
        ("demo-citizen-1", "template", "您的诉求有新进展\n#1"),
    ]
    assert later["messages"] == []
    assert someone_else["messages"] == []


async def test_a_fake_api_or_bot_that_is_down_never_breaks_the_page() -> None:
    sim = create_simulator_app(webhook_url=f"http://127.0.0.1:{free_port()}/wechat",
                               fake_api_url=f"http://127.0.0.1:{free_port()}",
                               settings=Settings(wechat_token=TOKEN), identities=[])
    runner, url = await serve(sim)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/sim/pushes", params={"since": "7"}) as r:
                polled = await r.json()
            async with http.post(f"{url}/sim/send", json={"openid": "x", "kind": "text", "text": "hi"}) as r:
                sent = await r.json()
    finally:
        await runner.cleanup()

    assert polled["messages"] == [] and polled["next"] == 7
    assert sent["ok"] is False and sent["error"].startswith("连不上机器人")


@pytest.mark.parametrize("payload", [{"kind": "text"}, {"openid": "x", "kind": "sticker"}])
async def test_bad_send_requests_are_refused(rig: SimulatorRig, payload: dict) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{rig.url}/sim/send", json=payload) as r:
            assert r.status == 400
    assert rig.webhook.received == []


async def test_cdata_end_marker_in_content_survives(rig: SimulatorRig) -> None:
    result = await post_send(rig, openid="demo-citizen-1", kind="text", text="a]]>b<c>&d", safe=False)

    assert xmltodict.parse(result["request"]["xml"])["xml"]["Content"] == "a]]>b<c>&d"
    assert rig.webhook.received[0]["message"].content == "a]]>b<c>&d"


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


async def test_safe_mode_request_matches_wechat_signature_rules(rig: SimulatorRig) -> None:
    result = await post_send(rig, openid="demo-citizen-1", kind="text", text="签名", safe=True)

    p, body = result["request"]["params"], result["request"]["body"]
    assert len(p["nonce"]) == 10 and p["nonce"].isdigit()
    assert p["signature"] == _sha1(TOKEN, p["timestamp"], p["nonce"])
    wire = xmltodict.parse(body)["xml"]
    assert wire["ToUserName"] == "gh_ztc_demo0001"
    assert p["msg_signature"] == _sha1(TOKEN, p["timestamp"], p["nonce"], wire["Encrypt"])
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    assert crypto.decrypt_message(body, p["msg_signature"], p["timestamp"], p["nonce"]) == result["request"]["xml"]


async def test_reply_with_a_forged_signature_is_refused(rig: SimulatorRig) -> None:
    rig.webhook.forge_reply_signature = True

    result = await post_send(rig, openid="demo-citizen-1", kind="text", text="你好", safe=True)

    assert result["ok"] is False and result["status"] == 200 and result["reply"] is None
    assert "InvalidSignature" in result["error"]
    assert "<MsgSignature><![CDATA[0" in result["response_body"]


@pytest.mark.parametrize("answer", ["success", ""])
async def test_no_passive_reply_is_shown_as_none(rig: SimulatorRig, answer: str) -> None:
    rig.webhook.answer = answer

    result = await post_send(rig, openid="demo-citizen-1", kind="text", text="你好", safe=True)

    assert result["ok"] is True and result["reply"] is None and "error" not in result


async def test_pushes_skip_failed_sends_and_api_calls_that_are_not_messages(rig: SimulatorRig) -> None:
    rig.fake_api.fail_next("/cgi-bin/message/custom/send", 45047, "out of response count limit")

    await post_send(rig, openid="demo-citizen-1", kind="text", text=PUSH_TRIGGER, safe=False)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{rig.url}/sim/pushes", params={"since": "0"}) as r:
            polled = await r.json()

    # the token fetch and the refused customer-service message are not shown; the cursor passes them
    assert [(m["via"], m["text"]) for m in polled["messages"]] == [("template", "您的诉求有新进展\n#1")]
    assert polled["next"] == len(rig.fake_api.calls) == 3
