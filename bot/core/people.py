"""Stations, deputies, their duty shifts, and the citizens who follow the account."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum


class StationKind(StrEnum):
    HOME = "家"  # 代表之家, one per town/street
    STATION = "站"  # 代表联络站, per village/community, some specialised
    POINT = "点"  # 代表联系点


DEPUTY_LEVELS = ("全国", "省", "市", "区", "镇")

DISTRICT_QUEUE = "district"  # station code of the district-wide queue


@dataclass(frozen=True)
class Station:
    code: str
    name: str
    kind: StationKind
    town: str
    address: str = ""
    specialties: tuple[str, ...] = ()  # categories served
    places: tuple[str, ...] = ()  # villages / communities served


@dataclass(frozen=True)
class Deputy:
    code: str
    name: str
    level: str
    station_code: str
    phone: str = ""
    openid: str | None = None  # set once the deputy binds their WeChat account


def duty_day_key(day: date | int) -> str:
    """A shift day as one string: '2026-12-01' for a date, 'w1'..'w7' for a weekday (never equal)."""
    return day.isoformat() if isinstance(day, date) else f"w{int(day)}"


@dataclass(frozen=True)
class DutyShift:
    station_code: str
    deputy_code: str
    day: date | int  # a date, or an ISO weekday 1 (Mon) .. 7 (Sun)
    start: time
    end: time

    @property
    def day_key(self) -> str:
        return duty_day_key(self.day)

    def covers(self, at: datetime) -> bool:
        if isinstance(self.day, date):
            if at.date() != self.day:
                return False
        elif at.isoweekday() != self.day:
            return False
        return self.start <= at.time() < self.end


@dataclass
class Citizen:
    """What the bot keeps of one follower: the station bound by QR code, whether they follow us.
    (WeChat's messaging window is short-lived state: handlers/delivery.py keeps it in the key-value store.)"""

    openid: str
    station_code: str | None = None
    subscribed: bool = True
    # the chat scene last entered and when (durable: tells a state lost with Redis from none)
    scene: str = ""
    scene_started_at: datetime | None = None
