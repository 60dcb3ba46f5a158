"""The WeChat protocol samples, fixtures inside the repo (imported by name: tests/wechat is on
sys.path under pytest). Provenance and licences: tests/fixtures/wechat/SOURCES.md."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WECHAT_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "wechat"


def load_manifest() -> list[dict[str, Any]]:
    return json.loads((WECHAT_DATA / "xml_manifest.json").read_text(encoding="utf-8"))


def load_vectors() -> list[dict[str, Any]]:
    return json.loads((WECHAT_DATA / "crypto_vectors.json").read_text(encoding="utf-8"))["vectors"]


# Hostile XML (entity expansion, external entity): refused before anything parses it (MsgId 203).
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY a "aaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>oX1234567890</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&d;</Content><MsgId>203</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>oX1234567890</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>203</MsgId></xml>"""
