"""The shared WeChat protocol samples (imported by name: tests/wechat is on sys.path under pytest)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """<repo>/../shared/data, or $ZTC_SHARED_DATA (CI clones the repo elsewhere, shared/ beside it)."""
    directory = Path(os.environ.get("ZTC_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
    wechat = directory / "wechat"
    if not (wechat / "xml_manifest.json").is_file():
        raise RuntimeError(f"WeChat protocol samples not found in {wechat}; set ZTC_SHARED_DATA")
    return directory


WECHAT_DATA = shared_data_dir() / "wechat"


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
