"""Every real WeChat sample parses into an Inbound; hostile or broken XML is refused."""
from __future__ import annotations

import pytest

from bot.wechat.inbound import MalformedMessage, parse
from bot.wechat.platform import image_xml, location_xml, voice_xml

from wechat_samples import BILLION_LAUGHS, EXTERNAL_ENTITY, WECHAT_DATA, load_manifest

MANIFEST = load_manifest()
KNOWN_KINDS = {"text", "image", "voice", "video", "shortvideo", "location", "link"}


def test_manifest_covers_every_sample_file() -> None:
    on_disk = {
        f"{d.name}/{f.name}" for d in (WECHAT_DATA / "xml_wechatpy", WECHAT_DATA / "xml_werobot") for f in d.glob("*.xml")
    }
    assert on_disk == {entry["file"] for entry in MANIFEST}
    assert len(on_disk) > 80


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_every_sample_parses(entry: dict) -> None:
    xml = (WECHAT_DATA / entry["file"]).read_text(encoding="utf-8")
    inbound = parse(xml).inbound
    assert inbound.openid
    assert inbound.created_at > 0
    msg_type, event = entry["MsgType"], entry["Event"]
    if msg_type == "event":
        assert inbound.kind == "event"
        assert inbound.event == event.lower()
        assert inbound.msg_id == ""
        assert inbound.dedupe_key.startswith(f"evt:{inbound.openid}:{inbound.created_at}:{inbound.event}:")
    elif msg_type in KNOWN_KINDS:
        assert inbound.kind == msg_type
        assert inbound.msg_id
        assert inbound.dedupe_key == f"msg:{inbound.msg_id}"
    else:  # notsure, unknown, device_text, device_event
        assert inbound.kind == "unknown"
        assert inbound.raw_type.startswith(msg_type)
    # the bytes form reads the same
    assert parse(xml.encode("utf-8")).inbound == inbound


def _sample(name: str) -> str:
    return (WECHAT_DATA / name).read_text(encoding="utf-8")


def test_text_message_fields() -> None:
    parsed = parse(_sample("xml_wechatpy/test_parser__test_parse_text_message.xml"))
    assert parsed.account == "toUser"
    i = parsed.inbound
    assert (i.openid, i.kind, i.text, i.msg_id, i.created_at) == ("fromUser", "text", "this is a test", "1234567890123456", 1348831860)


def test_voice_recognition_becomes_text() -> None:
    i = parse(_sample("xml_werobot/test_parser__test_voice_message.xml")).inbound
    assert (i.kind, i.text, i.media_id) == ("voice", "Meow~", "media_id")
    plain = parse(_sample("xml_wechatpy/test_parser__test_parse_voice_message.xml")).inbound
    assert plain.kind == "voice" and plain.text == "" and plain.media_id == "media_id"


def test_image_location_link_fields() -> None:
    image = parse(_sample("xml_wechatpy/test_parser__test_parse_image_message.xml")).inbound
    assert image.kind == "image" and image.media_id == "media_id" and image.pic_url == "this is a url"
    loc = parse(_sample("xml_wechatpy/test_parser__test_parse_location_message.xml")).inbound
    assert (loc.kind, loc.latitude, loc.longitude, loc.label) == ("location", 23.134521, 113.358803, "位置信息")
    link = parse(_sample("xml_wechatpy/test_parser__test_parse_link_message.xml")).inbound
    assert link.kind == "link" and link.text == "公众平台官网链接" and link.event_key == "url"


def test_events_fields() -> None:
    follow = parse(_sample("xml_werobot/test_parser__test_subscribe_event_2.xml")).inbound
    assert (follow.event, follow.scene, follow.event_key) == ("subscribe", "123123", "qrscene_123123")
    scan = parse(_sample("xml_wechatpy/test_events__test_scan_event.xml")).inbound
    assert (scan.event, scan.scene) == ("scan", "SCENE_VALUE")
    location = parse(_sample("xml_werobot/test_parser__test_location_event.xml")).inbound
    assert (location.event, location.latitude, location.longitude) == ("location", 23.137466, 113.352425)
    picked = parse(_sample("xml_wechatpy/test_events__test_location_select_event.xml")).inbound
    assert picked.event == "location_select" and picked.label.startswith("广州市海珠区")
    click = parse(_sample("xml_wechatpy/test_parser__test_parse_click_event.xml")).inbound
    assert click.event == "click" and click.event_key == "EVENTKEY"
    unknown = parse(_sample("xml_werobot/test_parser__test_unknown_event.xml")).inbound
    assert unknown.kind == "event" and unknown.event == "unknown"


def _event(event: str, key: str) -> str:
    return (
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oCitizen0001]]></FromUserName>"
        f"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<EventKey><![CDATA[{key}]]></EventKey><Ticket><![CDATA[T]]></Ticket></xml>"
    )


def test_station_qr_scene_on_follow_and_on_scan() -> None:
    follow = parse(_event("subscribe", "qrscene_station:S01")).inbound
    assert (follow.kind, follow.event, follow.scene) == ("event", "subscribe", "station:S01")
    scan = parse(_event("SCAN", "station:S01")).inbound
    assert (scan.event, scan.scene) == ("scan", "station:S01")
    plain = parse(_event("subscribe", "")).inbound
    assert plain.event == "subscribe" and plain.scene == ""
    assert parse(_event("unsubscribe", "")).inbound.event == "unsubscribe"
    assert parse(_event("TEMPLATESENDJOBFINISH", "")).inbound.event == "templatesendjobfinish"


def test_unknown_message_type_is_kept_not_raised() -> None:
    xml = ("<xml><ToUserName>gh</ToUserName><FromUserName>oX1234567890</FromUserName><CreateTime>1</CreateTime>"
           "<MsgType>miniprogrampage</MsgType><Title>t</Title><MsgId>42</MsgId></xml>")
    i = parse(xml).inbound
    assert (i.kind, i.raw_type, i.msg_id) == ("unknown", "miniprogrampage", "42")
    no_type = parse("<xml><FromUserName>oX1234567890</FromUserName><CreateTime>1</CreateTime></xml>").inbound
    assert no_type.kind == "unknown"


EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE xml SYSTEM "http://127.0.0.1:1/evil.dtd">
<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType></xml>"""


@pytest.mark.parametrize(
    "xml",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        EXTERNAL_DTD,
        "",
        "   ",
        "not xml at all",
        "<xml><FromUserName>o1</FromUserName>",  # truncated
        "<root><FromUserName>o1</FromUserName><MsgType>text</MsgType></root>",  # not <xml>
        "<xml><MsgType>text</MsgType><Content>no sender</Content></xml>",
        b"<xml><FromUserName>\xff\xfe</FromUserName></xml>",  # not UTF-8
    ],
    ids=["billion-laughs", "external-entity", "external-dtd", "empty", "blank", "garbage", "truncated",
         "wrong-root", "no-sender", "not-utf8"],
)
def test_bad_and_hostile_xml_is_refused(xml: str | bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse(xml).inbound


def test_platform_media_and_location_messages_parse() -> None:
    image = parse(image_xml("o1", "gh_x", media_id="M1", msg_id=11)).inbound
    assert (image.kind, image.media_id, image.msg_id) == ("image", "M1", "11") and image.pic_url.startswith("http")
    voice = parse(voice_xml("o1", "gh_x", "桥上的栏杆断了", msg_id=12)).inbound
    assert (voice.kind, voice.text) == ("voice", "桥上的栏杆断了") and voice.media_id
    location = parse(location_xml("o1", "gh_x", 31.1605, 120.6422, "松陵街道", msg_id=13)).inbound
    assert (location.kind, location.latitude, location.longitude, location.label) == \
        ("location", 31.1605, 120.6422, "松陵街道")
