"""Safe mode (安全模式): a thin wrapper over wechatpy's WeChatCrypto.

The outer envelope is read with defusedxml before anything else touches it; wechatpy does the AES
and the msg_signature check. Every failure becomes one of two exceptions the webhook maps to HTTP.
"""
from __future__ import annotations

import time

from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from bot.wechat.inbound import MalformedMessage, check_xml

__all__ = [
    "DecryptError",
    "InvalidSignature",
    "MessageCrypto",
    "StaleRequest",
    "check_timestamp",
    "verify_signature",
]


class InvalidSignature(Exception):
    """signature / msg_signature does not match our token: not from WeChat."""


class StaleRequest(Exception):
    """The signed timestamp is missing or too far from our clock: a replay, or not from WeChat."""


def check_timestamp(timestamp: str, window: float, now: float | None = None) -> None:
    """Refuse a request signed more than `window` seconds before or after `now`."""
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise StaleRequest("timestamp is not a number") from None
    skew = signed_at - (time.time() if now is None else now)
    if abs(skew) > window:
        raise StaleRequest(f"timestamp {skew:+.0f}s from our clock (window ±{window:.0f}s)")


class DecryptError(ValueError):
    """Signed correctly but the ciphertext does not decrypt to a message for our appid."""


def verify_signature(token: str, signature: str, timestamp: str, nonce: str) -> None:
    """The plain `signature` query parameter (sent in every mode). Raises InvalidSignature."""
    if not (signature and timestamp and nonce):
        raise InvalidSignature("missing signature parameters")
    try:
        check_signature(token, signature, timestamp, nonce)
    except InvalidSignatureException as exc:
        raise InvalidSignature("signature mismatch") from exc


class MessageCrypto:
    """AES for one account. `app_id` is the receive_id: the appid (公众号) or corpid (企业微信)."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        try:
            self._crypto = WeChatCrypto(token, encoding_aes_key, app_id)
        except (AssertionError, ValueError) as exc:  # wechatpy asserts a 32-byte key
            raise ValueError("EncodingAESKey must be 43 characters of base64") from exc

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET verification in safe mode: check msg_signature, return the decrypted echostr."""
        return self._decrypt(echostr, msg_signature, timestamp, nonce)

    def decrypt_message(self, body: str | bytes, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The inner message XML of an encrypted POST body (not yet parsed)."""
        _require_signature(msg_signature, timestamp, nonce)  # unsigned: refused before the body is read
        encrypt = _envelope_encrypt(body)
        return self._decrypt(encrypt, msg_signature, timestamp, nonce)

    def encrypt_message(self, reply_xml: str, nonce: str, timestamp: str | int | None = None) -> str:
        """The passive-reply envelope (Encrypt, MsgSignature, TimeStamp, Nonce)."""
        return self._crypto.encrypt_message(reply_xml, nonce, str(timestamp or int(time.time())))

    def _decrypt(self, encrypt: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        _require_signature(msg_signature, timestamp, nonce, encrypt)
        try:
            # A dict skips wechatpy's own (unguarded) xmltodict parse of the envelope.
            return self._crypto.decrypt_message({"Encrypt": encrypt}, msg_signature, timestamp, nonce)
        except InvalidSignatureException as exc:
            raise InvalidSignature("msg_signature mismatch") from exc
        except Exception as exc:  # bad base64, padding, length, appid, UTF-8: all "not ours"
            raise DecryptError(f"cannot decrypt: {type(exc).__name__}") from exc


def _require_signature(*parts: str) -> None:
    if not all(parts):
        raise InvalidSignature("missing msg_signature parameters")


def _envelope_encrypt(body: str | bytes) -> str:
    node = check_xml(body).find("Encrypt")  # MalformedMessage on hostile or broken XML
    if node is None or not (node.text or "").strip():
        raise MalformedMessage("no Encrypt element in an encrypted request")
    return node.text.strip()
