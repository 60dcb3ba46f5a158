"""WeChat's side of the callback protocol: build, sign and encrypt what WeChat would POST, and read
the passive reply. For the chat simulator, the end-to-end tests and the benchmark — the bot itself
never needs this."""
from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape

from wechatpy.utils import WeChatSigner

from bot.wechat.crypto import MessageCrypto
from bot.wechat.inbound import check_xml

_msg_ids = itertools.count(int(time.time() * 1000) * 1000)


def sign(*parts: str) -> str:
    """WeChat's sha1 over the sorted parts (token, timestamp, nonce[, encrypt])."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(openid: str, account: str, msg_type: str, *, created_at: int | None = None,
                msg_id: int | str | None = None, **fields: str | int | float) -> str:
    """A message as WeChat sends it. Pass msg_id=None for a fresh id; events carry none."""
    created_at = int(time.time()) if created_at is None else created_at
    nodes = [
        f"<ToUserName>{_cdata(account)}</ToUserName>",
        f"<FromUserName>{_cdata(openid)}</FromUserName>",
        f"<CreateTime>{created_at}</CreateTime>",
        f"<MsgType>{_cdata(msg_type)}</MsgType>",
    ]
    for name, value in fields.items():
        nodes.append(f"<{name}>{_cdata(value) if isinstance(value, str) else escape(str(value))}</{name}>")
    if msg_type != "event":
        nodes.append(f"<MsgId>{next(_msg_ids) if msg_id is None else msg_id}</MsgId>")
    return "<xml>" + "".join(nodes) + "</xml>"


def text_xml(openid: str, account: str, content: str, **kw: object) -> str:
    return message_xml(openid, account, "text", Content=content, **kw)  # type: ignore[arg-type]


def event_xml(openid: str, account: str, event: str, event_key: str = "", **kw: object) -> str:
    fields = {"Event": event, **({"EventKey": event_key} if event_key else {})}
    return message_xml(openid, account, "event", **fields, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SignedRequest:
    query: dict[str, str]
    body: str


def signed_request(token: str, xml: str, *, crypto: MessageCrypto | None = None,
                   timestamp: str | None = None, nonce: str | None = None) -> SignedRequest:
    """Query string and body for POST /wechat; encrypted (encrypt_type=aes) when crypto is given."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if crypto is None:
        return SignedRequest(query, xml)
    # wechatpy's envelope (Encrypt, MsgSignature, …) carries exactly what the webhook reads.
    envelope = crypto.encrypt_message(xml, nonce, timestamp)
    root = check_xml(envelope)
    query |= {"encrypt_type": "aes", "msg_signature": root.findtext("MsgSignature", "")}
    return SignedRequest(query, envelope)


def verify_query(token: str, echostr: str, *, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
    """GET /wechat URL-verification query in plain mode."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    return {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "echostr": echostr}


def open_reply(body: str, crypto: MessageCrypto | None = None) -> dict[str, str] | None:
    """The passive reply's fields (MsgType, Content, …), or None for `success`/empty.

    Encrypted replies are checked (MsgSignature) and decrypted with `crypto`."""
    if body.strip() in ("", "success"):
        return None
    root = check_xml(body)
    if root.find("Encrypt") is not None:
        if crypto is None:
            raise ValueError("encrypted reply but no crypto given")
        inner = crypto.decrypt_message(
            body, root.findtext("MsgSignature", ""), root.findtext("TimeStamp", ""), root.findtext("Nonce", "")
        )
        root = check_xml(inner)
    return {child.tag: (child.text or "") for child in root}
