"""Safe mode against the published vectors (公众号 and 企业微信 share the AES scheme; receive_id is
the appid or corpid) and the decrypted samples."""
from __future__ import annotations

import pytest
from wechatpy.crypto.base import BasePrpCrypto

from bot.wechat.crypto import DecryptError, InvalidSignature, MessageCrypto, verify_signature
from bot.wechat.inbound import MalformedMessage, parse
from bot.wechat.platform import read_reply, sign, signed_request, text_xml
from wechat_samples import WECHAT_DATA, load_vectors

VECTORS = load_vectors()
BY_ID = {v["id"]: v for v in VECTORS}


def _crypto(v: dict) -> MessageCrypto:
    return MessageCrypto(v["token"], v["encoding_aes_key"], v["receive_id"])


def _plain_file(v: dict) -> str:
    return (WECHAT_DATA / "decrypted" / f"{v['id']}.plain.xml").read_text(encoding="utf-8").strip()


def test_all_six_vectors_are_covered() -> None:
    assert len(VECTORS) == 6
    kinds = [v["kind"].split(" ")[0] for v in VECTORS]
    assert kinds.count("verify_url") == 2 and kinds.count("decrypt") == 3 and kinds.count("encrypt") == 1


@pytest.mark.parametrize("vid", [v["id"] for v in VECTORS if v["kind"].startswith("verify_url")])
def test_verify_url_vectors(vid: str) -> None:
    v = BY_ID[vid]
    echo = _crypto(v).verify_url(v["msg_signature"], v["timestamp"], v["nonce"], v["encrypt"])
    assert echo == v["decrypted_plaintext"]
    if "negative_case" in v:
        with pytest.raises(InvalidSignature):
            _crypto(v).verify_url(v["msg_signature"], v["timestamp"], v["negative_case"]["nonce"], v["encrypt"])


@pytest.mark.parametrize("vid", [v["id"] for v in VECTORS if v["kind"].startswith("decrypt")])
def test_decrypt_vectors(vid: str) -> None:
    v = BY_ID[vid]
    plain = _crypto(v).decrypt_message(v["request_xml"], v["msg_signature"], v["timestamp"], v["nonce"])
    assert plain == v["decrypted_plaintext"]
    assert plain.strip() == _plain_file(v)
    inbound = parse(plain).inbound
    assert inbound.kind == "text"
    for field, value in v.get("expected_fields", {}).items():
        assert {"Content": inbound.text, "FromUserName": inbound.openid}[field] == value


@pytest.mark.parametrize("vid", [v["id"] for v in VECTORS if v["kind"].startswith("decrypt")])
def test_decrypt_refuses_tampering(vid: str) -> None:
    v = BY_ID[vid]
    crypto = _crypto(v)
    with pytest.raises(InvalidSignature):
        crypto.decrypt_message(v["request_xml"], "0" * 40, v["timestamp"], v["nonce"])
    with pytest.raises(InvalidSignature):
        crypto.decrypt_message(v["request_xml"], v["msg_signature"], str(int(v["timestamp"]) + 1), v["nonce"])
    with pytest.raises(DecryptError):  # right key, but the message is for another account
        MessageCrypto(v["token"], v["encoding_aes_key"], "wx_someone_else").decrypt_message(
            v["request_xml"], v["msg_signature"], v["timestamp"], v["nonce"]
        )


def test_encrypt_vector_is_reproduced(monkeypatch: pytest.MonkeyPatch) -> None:
    v = BY_ID["wechatpy_work_encrypt_msg_deterministic"]
    assert v["plaintext"].strip() == _plain_file(v)
    monkeypatch.setattr(BasePrpCrypto, "get_random_string", lambda self: v["random_prefix"])
    envelope = _crypto(v).encrypt_message(v["plaintext"], v["nonce"], v["timestamp"])
    assert envelope == v["expected_response_xml"]


def test_round_trip_with_fresh_randomness() -> None:
    v = BY_ID["mp_official_decrypt_msg"]
    crypto = _crypto(v)
    envelope = crypto.encrypt_message("<xml><Content><![CDATA[您好]]></Content></xml>", "42", "1700000000")
    encrypt = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    signature = sign(v["token"], "1700000000", "42", encrypt)
    assert crypto.decrypt_message(envelope, signature, "1700000000", "42") == "<xml><Content><![CDATA[您好]]></Content></xml>"


@pytest.mark.parametrize(
    "body",
    [
        "<xml><ToUserName>gh</ToUserName></xml>",  # no Encrypt
        '<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
        "<xml><Encrypt>",
    ],
)
def test_hostile_or_empty_envelopes(body: str) -> None:
    v = BY_ID["mp_official_decrypt_msg"]
    with pytest.raises(MalformedMessage):
        _crypto(v).decrypt_message(body, v["msg_signature"], v["timestamp"], v["nonce"])


def test_garbage_ciphertext_is_a_decrypt_error() -> None:
    v = BY_ID["mp_official_decrypt_msg"]
    for encrypt in ("not-base64!!", "QUJD", "A" * 64):
        signature = sign(v["token"], v["timestamp"], v["nonce"], encrypt)
        with pytest.raises(DecryptError):
            _crypto(v).decrypt_message(f"<xml><Encrypt>{encrypt}</Encrypt></xml>", signature, v["timestamp"], v["nonce"])


def test_plain_signature() -> None:
    verify_signature("tok", sign("tok", "1", "2"), "1", "2")
    for bad in (("tok", "0" * 40, "1", "2"), ("tok", "", "1", "2"), ("other", sign("tok", "1", "2"), "1", "2")):
        with pytest.raises(InvalidSignature):
            verify_signature(*bad)


def test_bad_aes_key_is_refused_at_construction() -> None:
    with pytest.raises(ValueError):
        MessageCrypto("tok", "short", "wx1")


def test_platform_safe_mode_request_is_what_wechat_sends() -> None:
    crypto = MessageCrypto("tok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1")
    xml = text_xml("o1", "gh_x", "你好", msg_id=1)
    req = signed_request("tok", xml, crypto=crypto, openid="o1", timestamp="1700000000", nonce="1234567890")
    assert req.body.startswith("<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[")
    assert req.query["openid"] == "o1" and req.query["encrypt_type"] == "aes"
    assert crypto.decrypt_message(req.body, req.query["msg_signature"], "1700000000", "1234567890") == xml
    assert "openid" not in signed_request("tok", xml).query  # opt-in: what the tests post stays as it was


def test_platform_reads_encrypted_replies_and_refuses_forged_ones() -> None:
    crypto = MessageCrypto("tok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1")
    plain = "<xml><MsgType>text</MsgType><Content>hi</Content></xml>"
    envelope = crypto.encrypt_message(plain, "1", "2")
    reply = read_reply(envelope, crypto)
    assert reply is not None and (reply.xml, reply.encrypted, reply.fields["Content"]) == (plain, True, "hi")
    with pytest.raises(InvalidSignature):
        read_reply(envelope.replace("<MsgSignature><![CDATA[", "<MsgSignature><![CDATA[0"), crypto)
    with pytest.raises(ValueError):
        read_reply(envelope)  # encrypted, but no crypto
    assert read_reply("success") is None and read_reply(" ") is None
