"""What the WeChat server would send and how it reads our answer — transport-free, for the simulator.

Crypto and signing come from wechatpy; this module only shapes XML and query parameters the way
the real platform does (plaintext mode, and safe mode with `encrypt_type=aes`).
"""
from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner, random_string

# Wujiang's centre (松陵), used when a location message is sent without coordinates
DEFAULT_LATITUDE = 31.1605
DEFAULT_LONGITUDE = 120.6422

MESSAGE_KINDS = ("text", "image", "voice", "location", "subscribe", "scan")

# MsgIds are 64-bit integers on the real platform; keep ours unique and increasing per process
_msg_ids = itertools.count(time.time_ns() // 1000)


def next_msg_id() -> str:
    return str(next(_msg_ids))


def _cdata(value: object) -> str:
    # "]]>" cannot appear inside CDATA: split it across two sections, as WeChat's own SDKs do
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass(frozen=True)
class InboundSpec:
    """One thing a user does in the chat, before it becomes XML."""

    kind: str  # one of MESSAGE_KINDS
    openid: str
    to_user: str  # the official account's original id (gh_…)
    created_at: int
    msg_id: str = ""  # events carry none
    text: str = ""  # text Content; voice Recognition
    label: str = ""  # location label
    latitude: float = DEFAULT_LATITUDE
    longitude: float = DEFAULT_LONGITUDE
    scene: str = ""  # QR scene, e.g. station:SL-01 ("" = followed without a QR code)
    media_id: str = ""
    pic_url: str = ""


def build_inbound_xml(spec: InboundSpec) -> str:
    """The plaintext XML WeChat posts for this message or event."""
    if spec.kind not in MESSAGE_KINDS:
        raise ValueError(f"unknown message kind {spec.kind!r}")
    parts = [
        f"<ToUserName>{_cdata(spec.to_user)}</ToUserName>",
        f"<FromUserName>{_cdata(spec.openid)}</FromUserName>",
        f"<CreateTime>{int(spec.created_at)}</CreateTime>",
    ]
    media_id = spec.media_id or random_string(32)
    if spec.kind == "text":
        parts += [f"<MsgType>{_cdata('text')}</MsgType>", f"<Content>{_cdata(spec.text)}</Content>"]
    elif spec.kind == "image":
        pic_url = spec.pic_url or f"http://mmbiz.qpic.cn/mmbiz_jpg/{media_id}/0"
        parts += [
            f"<MsgType>{_cdata('image')}</MsgType>",
            f"<PicUrl>{_cdata(pic_url)}</PicUrl>",
            f"<MediaId>{_cdata(media_id)}</MediaId>",
        ]
    elif spec.kind == "voice":
        parts += [
            f"<MsgType>{_cdata('voice')}</MsgType>",
            f"<MediaId>{_cdata(media_id)}</MediaId>",
            f"<Format>{_cdata('amr')}</Format>",
            f"<Recognition>{_cdata(spec.text)}</Recognition>",
        ]
    elif spec.kind == "location":
        parts += [
            f"<MsgType>{_cdata('location')}</MsgType>",
            f"<Location_X>{spec.latitude:.6f}</Location_X>",
            f"<Location_Y>{spec.longitude:.6f}</Location_Y>",
            "<Scale>15</Scale>",
            f"<Label>{_cdata(spec.label)}</Label>",
        ]
    elif spec.kind == "subscribe":
        parts += [f"<MsgType>{_cdata('event')}</MsgType>", f"<Event>{_cdata('subscribe')}</Event>"]
        if spec.scene:
            # a follow through a parametric QR code: the scene comes prefixed with qrscene_
            parts += [
                f"<EventKey>{_cdata('qrscene_' + spec.scene)}</EventKey>",
                f"<Ticket>{_cdata(random_string(32))}</Ticket>",
            ]
        else:
            parts.append(f"<EventKey>{_cdata('')}</EventKey>")
    elif spec.kind == "scan":
        # an existing follower scanning a QR code: SCAN, and the scene without prefix
        parts += [
            f"<MsgType>{_cdata('event')}</MsgType>",
            f"<Event>{_cdata('SCAN')}</Event>",
            f"<EventKey>{_cdata(spec.scene)}</EventKey>",
            f"<Ticket>{_cdata(random_string(32))}</Ticket>",
        ]
    if spec.msg_id and spec.kind not in ("subscribe", "scan"):
        parts.append(f"<MsgId>{spec.msg_id}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


def sign(token: str, *values: str) -> str:
    """sha1 over the sorted values, WeChat's request signature (and msg_signature with Encrypt)."""
    signer = WeChatSigner()
    signer.add_data(token, *values)
    return signer.signature


@dataclass(frozen=True)
class SignedRequest:
    params: dict[str, str]  # the query string WeChat adds to the webhook URL
    body: str


def make_crypto(token: str, aes_key: str, appid: str) -> WeChatCrypto | None:
    return WeChatCrypto(token, aes_key, appid) if aes_key else None


def sign_request(
    xml: str,
    *,
    token: str,
    openid: str,
    to_user: str,
    crypto: WeChatCrypto | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> SignedRequest:
    """Query parameters and body as WeChat sends them; encrypted (safe mode) when `crypto` is given."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(9 * 10**9) + 10**9)  # WeChat sends a numeric nonce
    params = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": openid}
    if crypto is None:
        return SignedRequest(params, xml)
    encrypted = xmltodict.parse(crypto.encrypt_message(xml, nonce, timestamp))["xml"]
    encrypt = encrypted["Encrypt"]
    params["encrypt_type"] = "aes"
    params["msg_signature"] = sign(token, timestamp, nonce, encrypt)
    body = f"<xml><ToUserName>{_cdata(to_user)}</ToUserName><Encrypt>{_cdata(encrypt)}</Encrypt></xml>"
    return SignedRequest(params, body)


@dataclass
class Reply:
    """A passive reply as the user would see it."""

    msg_type: str
    text: str
    xml: str  # decrypted plaintext XML
    encrypted: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


class ReplyError(ValueError):
    """The bot's answer is not a valid passive reply (bad XML, bad msg_signature, cannot decrypt)."""


def parse_reply(body: str, *, crypto: WeChatCrypto | None = None) -> Reply | None:
    """The reply carried by the webhook's response body; None for "" and "success" (no reply)."""
    body = (body or "").strip()
    if not body or body == "success":
        return None
    try:
        doc = xmltodict.parse(body, disable_entities=True)["xml"] or {}
    except Exception as exc:  # expat raises several types; all mean the same here
        raise ReplyError(f"reply is not XML: {exc}") from exc
    encrypted = "Encrypt" in doc
    if encrypted:
        if crypto is None:
            raise ReplyError("encrypted reply but no EncodingAESKey configured")
        try:
            plain = crypto.decrypt_message(body, doc.get("MsgSignature", ""), doc.get("TimeStamp", ""), doc.get("Nonce", ""))
        except Exception as exc:
            raise ReplyError(f"cannot verify/decrypt the reply: {exc!r}") from exc
        plain_xml = plain.decode() if isinstance(plain, bytes) else str(plain)
        doc = xmltodict.parse(plain_xml, disable_entities=True)["xml"] or {}
    else:
        plain_xml = body
    msg_type = str(doc.get("MsgType") or "")
    return Reply(msg_type=msg_type, text=_reply_text(msg_type, doc), xml=plain_xml, encrypted=encrypted, fields=doc)


def _reply_text(msg_type: str, doc: dict[str, Any]) -> str:
    if msg_type == "text":
        return str(doc.get("Content") or "")
    if msg_type == "news":
        items = ((doc.get("Articles") or {}).get("item")) or []
        if isinstance(items, dict):
            items = [items]
        return "\n".join(
            " — ".join(str(x) for x in (item.get("Title"), item.get("Description")) if x) for item in items
        )
    return f"[{msg_type or '?'}]"


# --- pushes recorded by the fake WeChat API ----------------------------------------------------------
def describe_call(call: Any, openid: str | None = None) -> dict[str, str] | None:
    """A recorded outbound API call as a chat message {"openid", "via", "text"}; None when it is not a
    delivered message (token fetches, QR codes, failed sends) or not to `openid` (when given).

    Defensive about the recorder's shape: the JSON body sent (under "body" or "json"), or the
    flattened fields bot/wechat/fake_api.py lists (openid, msgtype, text, template_id, data)."""
    if not isinstance(call, dict):
        return None
    if call.get("errcode") not in (None, 0):
        return None  # WeChat refused it: the user never saw it
    body = call.get("body") if isinstance(call.get("body"), dict) else call.get("json")
    if not isinstance(body, dict):
        body = {
            "touser": call.get("openid"),
            "msgtype": call.get("msgtype") or "",
            "text": {"content": call.get("text") or ""},
            "data": call.get("data"),
        }
        if call.get("template_id") or call.get("msgtype") == "template":
            body["template_id"] = call.get("template_id") or ""
    path = str(call.get("path") or "")
    to = body.get("touser") or call.get("openid")
    if not to or (openid is not None and to != openid):
        return None
    if "template/send" in path or ("template_id" in body and "custom/send" not in path):
        return {"openid": str(to), "via": "template", "text": _template_text(body)}
    if "custom/send" in path or body.get("msgtype"):
        return {"openid": str(to), "via": "customer_service", "text": _custom_text(body)}
    return None


def _value(entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get("value", ""))
    return "" if entry is None else str(entry)


def _template_text(body: dict[str, Any]) -> str:
    data = body.get("data")
    lines = [_value(v) for v in data.values()] if isinstance(data, dict) else []
    if body.get("url"):
        lines.append(str(body["url"]))
    return "\n".join(line for line in lines if line) or f"[{body.get('template_id', '')}]"


def _custom_text(body: dict[str, Any]) -> str:
    msgtype = str(body.get("msgtype") or "text")
    part = body.get(msgtype)
    if msgtype == "text" and isinstance(part, dict):
        return str(part.get("content", ""))
    if msgtype == "news" and isinstance(part, dict):
        articles = part.get("articles") or []
        return "\n".join(str(a.get("title", "")) for a in articles if isinstance(a, dict))
    return f"[{msgtype}]"
