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
from bot.wechat.inbound import MalformedMessage, check_xml

_msg_ids = itertools.count(int(time.time() * 1000) * 1000)


def next_msg_id() -> int:
    """A fresh MsgId: unique and increasing in this process (64-bit, as on WeChat)."""
    return next(_msg_ids)


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
        nodes.append(f"<MsgId>{next_msg_id() if msg_id is None else msg_id}</MsgId>")
    return "<xml>" + "".join(nodes) + "</xml>"


def text_xml(openid: str, account: str, content: str, **kw: object) -> str:
    return message_xml(openid, account, "text", Content=content, **kw)  # type: ignore[arg-type]


def event_xml(openid: str, account: str, event: str, event_key: str = "", **kw: object) -> str:
    fields = {"Event": event, **({"EventKey": event_key} if event_key else {})}
    return message_xml(openid, account, "event", **fields, **kw)  # type: ignore[arg-type]


def subscribe_popup_xml(openid: str, account: str, choices: dict[str, str], **kw: object) -> str:
    """subscribe_msg_popup_event: the user's accept/reject per 订阅通知 template id."""
    items = "".join(f"<List><TemplateId>{_cdata(t)}</TemplateId><SubscribeStatusString>{_cdata(s)}"
                    "</SubscribeStatusString><PopupScene>2</PopupScene></List>" for t, s in choices.items())
    xml = event_xml(openid, account, "subscribe_msg_popup_event", **kw)
    return xml.replace("</xml>", f"<SubscribeMsgPopupEvent>{items}</SubscribeMsgPopupEvent></xml>")


def image_xml(openid: str, account: str, media_id: str | None = None, **kw: object) -> str:
    media_id = media_id or secrets.token_hex(16)
    pic_url = f"http://mmbiz.qpic.cn/mmbiz_jpg/{media_id}/0"
    return message_xml(openid, account, "image", PicUrl=pic_url, MediaId=media_id, **kw)  # type: ignore[arg-type]


def voice_xml(openid: str, account: str, recognition: str = "", media_id: str | None = None, **kw: object) -> str:
    """A voice message with WeChat's speech recognition result (empty when it recognised nothing)."""
    fields = {"MediaId": media_id or secrets.token_hex(16), "Format": "amr", "Recognition": recognition}
    return message_xml(openid, account, "voice", **fields, **kw)  # type: ignore[arg-type]


def location_xml(openid: str, account: str, latitude: float, longitude: float, label: str = "", **kw: object) -> str:
    fields = {"Location_X": latitude, "Location_Y": longitude, "Scale": 15, "Label": label}
    return message_xml(openid, account, "location", **fields, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SignedRequest:
    query: dict[str, str]
    body: str


def signed_request(token: str, xml: str, *, crypto: MessageCrypto | None = None, openid: str = "",
                   timestamp: str | None = None, nonce: str | None = None) -> SignedRequest:
    """Query string and body for POST /wechat; encrypted (encrypt_type=aes) when crypto is given.

    In safe mode the body is WeChat's: only ToUserName (read from `xml`, empty if it is not valid
    XML) and Encrypt. WeChat also puts the sender's `openid` in the query; pass it to do the same."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(9 * 10**9) + 10**9)  # WeChat's nonce: 10 digits
    query = {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    if openid:
        query["openid"] = openid
    if crypto is None:
        return SignedRequest(query, xml)
    try:
        account = check_xml(xml).findtext("ToUserName", "")
    except MalformedMessage:  # tests encrypt hostile or broken XML too
        account = ""
    encrypt = check_xml(crypto.encrypt_message(xml, nonce, timestamp)).findtext("Encrypt", "")
    query |= {"encrypt_type": "aes", "msg_signature": sign(token, timestamp, nonce, encrypt)}
    body = f"<xml><ToUserName>{_cdata(account)}</ToUserName><Encrypt>{_cdata(encrypt)}</Encrypt></xml>"
    return SignedRequest(query, body)


def verify_query(token: str, echostr: str, *, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
    """GET /wechat URL-verification query in plain mode."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    return {"signature": sign(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "echostr": echostr}


@dataclass(frozen=True)
class PassiveReply:
    xml: str  # the reply's plaintext XML (decrypted in safe mode)
    encrypted: bool
    fields: dict[str, str]  # MsgType, Content, …


def read_reply(body: str, crypto: MessageCrypto | None = None) -> PassiveReply | None:
    """The passive reply in a webhook's response body, or None for `success`/empty.

    Encrypted replies are checked (MsgSignature) and decrypted with `crypto`. Raises ValueError
    (MalformedMessage, DecryptError) or InvalidSignature when the body is not a valid reply."""
    if body.strip() in ("", "success"):
        return None
    root = check_xml(body)
    encrypted = root.find("Encrypt") is not None
    if encrypted:
        if crypto is None:
            raise ValueError("encrypted reply but no crypto given")
        body = crypto.decrypt_message(
            body, root.findtext("MsgSignature", ""), root.findtext("TimeStamp", ""), root.findtext("Nonce", "")
        )
        root = check_xml(body)
    return PassiveReply(body, encrypted, {child.tag: (child.text or "") for child in root})


def open_reply(body: str, crypto: MessageCrypto | None = None) -> dict[str, str] | None:
    """The passive reply's fields (MsgType, Content, …), or None for `success`/empty."""
    reply = read_reply(body, crypto)
    return None if reply is None else reply.fields
