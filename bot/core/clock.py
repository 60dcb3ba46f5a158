"""Time. All datetimes are naive, in the district's local time (Asia/Shanghai): duty rosters
are written that way."""
from __future__ import annotations

from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(LOCAL_TZ).replace(tzinfo=None)
