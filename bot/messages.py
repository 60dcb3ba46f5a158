"""What arrives from WeChat, reduced to what the application needs (the WeChat edge builds it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Inbound:
    openid: str  # FromUserName
    kind: str  # text | image | voice | video | shortvideo | location | link | event | unknown
    created_at: int = 0  # CreateTime, unix seconds
    msg_id: str = ""  # MsgId; empty for events
    text: str = ""  # text Content; voice Recognition; link title
    event: str = ""  # lower-case Event: subscribe | unsubscribe | scan | click | view | location | ...
    scene: str = ""  # QR scene without the qrscene_ prefix, e.g. station:S01 or deputy:D001
    event_key: str = ""  # raw EventKey (menu key, URL)
    media_id: str = ""
    pic_url: str = ""
    latitude: float | None = None
    longitude: float | None = None
    label: str = ""  # location label
    raw_type: str = ""  # the original MsgType (and Event) for unknown types

    @property
    def dedupe_key(self) -> str:
        """WeChat retries carry the same MsgId; events have none, so sender + CreateTime."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.openid}:{self.created_at}:{self.event}"
