"""Inbound WeChat XML → bot.core.inbound.Inbound.

The XML is checked with defusedxml (no DTD, no entities, no external references) before
wechatpy/xmltodict ever sees it; wechatpy then classifies the message. Anything we do not know is
kept as kind "unknown" (or as an event with its own name) — never an exception.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import wechatpy
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError
from defusedxml.ElementTree import fromstring as safe_fromstring

from bot.core.inbound import Inbound, InboundKind

QRSCENE_PREFIX = "qrscene_"
# Field bounds in UTF-8 bytes; a longer field refuses the whole message (400) before anything is
# stored. WeChat's openids are 28 characters (our columns hold 128); a MsgId is a 64-bit number
# (20 digits); an EventKey is a menu key (≤ 128 bytes), a QR scene (≤ 64) or a menu URL
# (≤ 1024 bytes). WeChat documents no limit for a user's text: 8 KB is four times what it
# accepts in a message to a user (2048 bytes), so the bot's own "too long" answers still apply.
FIELD_LIMITS = {"FromUserName": 64, "ToUserName": 64, "MsgId": 32, "EventKey": 1024}
FIELD_MAX_BYTES = 8192  # any other field: Content, Recognition, Label, Url, …
_MEDIA_KINDS = (InboundKind.IMAGE, InboundKind.VOICE, InboundKind.VIDEO, InboundKind.SHORTVIDEO)


class MalformedMessage(ValueError):
    """The body is not a WeChat message we can read safely (bad or hostile XML)."""


@dataclass(frozen=True)
class ParsedMessage:
    """An Inbound plus what a passive reply needs: the account id the message was sent to."""

    inbound: Inbound
    account: str  # ToUserName: our official account's original id (gh_…), the reply's sender


def check_xml(xml_text: str | bytes) -> Element:
    """Refuse DTDs, entity declarations and external references; refuse broken XML.

    Returns the (safely parsed) root element <xml>."""
    if not xml_text or not (xml_text.strip() if isinstance(xml_text, str) else xml_text.strip()):
        raise MalformedMessage("empty body")
    try:
        root = safe_fromstring(xml_text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MalformedMessage(f"hostile XML refused: {type(exc).__name__}") from exc
    except (ParseError, ValueError, UnicodeError) as exc:
        raise MalformedMessage(f"not well-formed XML: {exc}") from exc
    if root.tag != "xml":
        raise MalformedMessage(f"unexpected root element <{root.tag[:40]}>")
    return root


def parse(xml_text: str | bytes) -> ParsedMessage:
    """Parse a decrypted WeChat message. Raises MalformedMessage on bad or hostile XML."""
    check_xml(xml_text)
    data = _wechatpy_data(xml_text)
    _check_lengths(data)
    openid = _text(data, "FromUserName")
    if not openid:
        raise MalformedMessage("no FromUserName")
    return ParsedMessage(inbound=_map(data), account=_text(data, "ToUserName"))


def _wechatpy_data(xml_text: str | bytes) -> dict[str, Any]:
    """wechatpy's parse, falling back to its UnknownMessage shape when MsgType is missing."""
    if isinstance(xml_text, bytes):
        try:
            xml_text = xml_text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage("body is not UTF-8") from exc
    try:
        message = wechatpy.parse_message(xml_text)
    except KeyError:  # no MsgType: wechatpy insists on one; we call it unknown
        import xmltodict

        raw = xmltodict.parse(xml_text, disable_entities=True).get("xml")
        return dict(raw) if isinstance(raw, dict) else {}
    except Exception as exc:  # defensive: wechatpy on odd shapes (lists, attributes)
        raise MalformedMessage(f"unreadable message: {type(exc).__name__}") from exc
    # The raw field dict (with wechatpy's subscribe_scan rewrite, which we undo in _map).
    data = getattr(message, "_data", None)
    if not isinstance(data, dict):
        raise MalformedMessage("unreadable message")
    return data


def _check_lengths(data: dict[str, Any]) -> None:
    """Every field (nested ones too, e.g. SendLocationInfo) within its bound."""
    for name, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                _check_lengths(item)
                continue
            limit = FIELD_LIMITS.get(name, FIELD_MAX_BYTES)
            if item is not None and len(str(item).encode("utf-8")) > limit:
                raise MalformedMessage(f"{name[:40]} longer than {limit} bytes")


def _map(data: dict[str, Any]) -> Inbound:
    msg_type = _text(data, "MsgType").lower()
    common: dict[str, Any] = {
        "openid": _text(data, "FromUserName"),
        "created_at": _int(data, "CreateTime"),
        "msg_id": _text(data, "MsgId"),
    }
    if msg_type == "text":
        return Inbound(kind=InboundKind.TEXT, text=_text(data, "Content"), **common)
    if msg_type in _MEDIA_KINDS:
        return Inbound(
            kind=InboundKind(msg_type),
            text=_text(data, "Recognition") if msg_type == "voice" else "",
            media_id=_text(data, "MediaId"),
            pic_url=_text(data, "PicUrl"),
            **common,
        )
    if msg_type == "location":
        return Inbound(
            kind=InboundKind.LOCATION,
            latitude=_float(data, "Location_X"),
            longitude=_float(data, "Location_Y"),
            label=_text(data, "Label"),
            text=_text(data, "Label"),
            **common,
        )
    if msg_type == "link":
        # Inbound has no url field; the link's Url rides in event_key (as for VIEW events).
        return Inbound(kind=InboundKind.LINK, text=_text(data, "Title"), event_key=_text(data, "Url"), **common)
    if msg_type == "event":
        return _map_event(data, common)
    raw_type = msg_type or "-"
    if _text(data, "Event"):
        raw_type += ":" + _text(data, "Event")
    return Inbound(kind=InboundKind.UNKNOWN, raw_type=raw_type, text=_text(data, "Content"), **common)


def _map_event(data: dict[str, Any], common: dict[str, Any]) -> Inbound:
    original = _text(data, "Event")
    if original in ("subscribe_scan", "subscribe_scan_product"):  # wechatpy's names, not WeChat's
        original = "subscribe"
    event = _text(data, "Event").lower()
    key = _text(data, "EventKey")
    scene = ""
    if event == "subscribe_scan":  # wechatpy's rewrite of a follow by QR code: undo it
        event, scene, key = "subscribe", key, QRSCENE_PREFIX + key
    elif event == "subscribe_scan_product":
        event = "subscribe"
    elif event == "subscribe" and key.startswith(QRSCENE_PREFIX):
        scene = key[len(QRSCENE_PREFIX):]
    elif event == "scan":
        scene = key
    latitude = longitude = None
    label = ""
    if event == "location":
        latitude, longitude = _float(data, "Latitude"), _float(data, "Longitude")
    elif event == "location_select":
        info = data.get("SendLocationInfo")
        if isinstance(info, dict):
            latitude, longitude = _float(info, "Location_X"), _float(info, "Location_Y")
            label = _text(info, "Label")
    return Inbound(
        kind=InboundKind.EVENT,
        event=event,
        event_key=key,
        subscriptions=_subscriptions(data),
        scene=scene,
        latitude=latitude,
        longitude=longitude,
        label=label,
        raw_type="event:" + original,
        **{**common, "msg_id": ""},  # events carry no MsgId (MsgID of job reports is not one)
    )


SUBSCRIPTION_EVENTS = ("SubscribeMsgPopupEvent", "SubscribeMsgChangeEvent")  # the user chose in a pop-up / settings


def _subscriptions(data: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """(template id, accept|reject) for each template the user decided on."""
    found = []
    for name in SUBSCRIPTION_EVENTS:
        block = data.get(name)
        items = block.get("List") if isinstance(block, dict) else None
        for item in items if isinstance(items, list) else [items] if isinstance(items, dict) else []:
            template_id, status = _text(item, "TemplateId"), _text(item, "SubscribeStatusString").lower()
            if template_id and status in ("accept", "reject"):
                found.append((template_id, status))
    return tuple(found)


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if isinstance(value, list):  # a repeated element: the first one counts
        value = value[0] if value else None
    if isinstance(value, dict):  # an element with attributes: its text
        value = value.get("#text")
    return str(value).strip() if value is not None else ""


def _int(data: dict[str, Any], name: str) -> int:
    try:
        return int(_text(data, name))
    except ValueError:
        return 0


def _float(data: dict[str, Any], name: str) -> float | None:
    try:
        return float(_text(data, name))
    except ValueError:
        return None
