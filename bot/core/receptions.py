"""Reception days (代表接待日): when and where deputies meet citizens, who follows a station's
receptions, and the date words citizens ask with. Pure: the standard library and bot.core only.

All datetimes are naive, in the district's local time (bot/core/clock.py)."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from bot.core.errors import DomainError

MAX_TOPIC = 100
MAX_PLACE = 200


class ReceptionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class FollowUp:
    """What staff record after the reception (the deputies' duty records build on it)."""

    deputies_present: tuple[str, ...] = ()
    visitors: int = 0
    notes: str = ""
    tickets: tuple[int, ...] = ()  # the issues raised, each filed as a ticket on the visitor's behalf


@dataclass(frozen=True)
class Reception:
    station_code: str
    deputy_codes: tuple[str, ...]
    day: date
    start: time
    end: time
    topic: str
    place: str
    live_url: str = ""
    capacity: int | None = None
    status: ReceptionStatus = ReceptionStatus.SCHEDULED
    follow_up: FollowUp | None = None
    id: int | None = None  # given by the repository

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.day, self.start)

    @property
    def ends_at(self) -> datetime:
        return datetime.combine(self.day, self.end)

    @property
    def scheduled(self) -> bool:
        return self.status == ReceptionStatus.SCHEDULED

    @property
    def key(self) -> tuple[str, date, time]:
        """What an import upserts by: one reception per station, day and start time."""
        return (self.station_code, self.day, self.start)

    def overlaps(self, other: Reception) -> bool:
        return self.day == other.day and self.start < other.end and other.start < self.end

    def cancelled(self) -> Reception:
        return replace(self, status=ReceptionStatus.CANCELLED)

    def recorded(self, follow_up: FollowUp) -> Reception:
        return replace(self, follow_up=follow_up)


class ReceptionInvalid(Exception):
    """A reception breaks rules: each DomainError names a Chinese text (config/texts/receptions.yaml)."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        super().__init__([e.key for e in errors])
        self.errors = list(errors)


def check_reception(reception: Reception, *, now: datetime, station_codes: Iterable[str],
                    deputy_codes: Iterable[str], others: Sequence[Reception]) -> list[DomainError]:
    """Every broken rule of a new or edited reception (empty: it may be stored). `others` are the
    stored receptions it could clash with; the one it replaces (same id or key) is skipped."""
    errors: list[DomainError] = []
    if reception.station_code not in set(station_codes):
        errors.append(DomainError("reception_unknown_station", station=reception.station_code))
    known = set(deputy_codes)
    if not reception.deputy_codes:
        errors.append(DomainError("reception_no_deputy"))
    for code in reception.deputy_codes:
        if code not in known:
            errors.append(DomainError("reception_unknown_deputy", deputy=code))
    if not reception.start < reception.end:
        errors.append(DomainError("reception_end_before_start", start=f"{reception.start:%H:%M}",
                                  end=f"{reception.end:%H:%M}"))
    if reception.day < now.date():
        errors.append(DomainError("reception_in_past", day=reception.day.isoformat()))
    if not reception.topic.strip() or len(reception.topic) > MAX_TOPIC:
        errors.append(DomainError("reception_bad_topic", max=MAX_TOPIC))
    if not reception.place.strip() or len(reception.place) > MAX_PLACE:
        errors.append(DomainError("reception_bad_place", max=MAX_PLACE))
    if reception.capacity is not None and reception.capacity < 1:
        errors.append(DomainError("reception_bad_capacity"))
    for other in others:
        if not other.scheduled or other is reception or _same(other, reception):
            continue
        if reception.overlaps(other):
            for code in sorted(set(reception.deputy_codes) & set(other.deputy_codes)):
                errors.append(DomainError("reception_deputy_busy", deputy=code, day=other.day.isoformat(),
                                          start=f"{other.start:%H:%M}", end=f"{other.end:%H:%M}"))
    return errors


MAX_NOTES = 2000
MAX_VISITORS = 100_000


def check_follow_up(reception: Reception, follow_up: FollowUp, today: date) -> list[DomainError]:
    """What is wrong with recording `follow_up` for `reception` (empty: it may be stored)."""
    errors: list[DomainError] = []
    if not reception.scheduled:
        errors.append(DomainError("reception_record_cancelled"))
    if reception.day > today:
        errors.append(DomainError("reception_record_future", day=reception.day.isoformat()))
    if not follow_up.deputies_present:
        errors.append(DomainError("reception_record_no_deputy", field="deputies_present"))
    for code in follow_up.deputies_present:
        if code not in reception.deputy_codes:
            errors.append(DomainError("reception_record_other_deputy", field="deputies_present", deputy=code))
    if not 0 <= follow_up.visitors <= MAX_VISITORS:
        errors.append(DomainError("reception_record_bad_visitors", field="visitors"))
    if len(follow_up.notes) > MAX_NOTES:
        errors.append(DomainError("reception_record_long_notes", field="notes", max=MAX_NOTES))
    return errors


def _same(a: Reception, b: Reception) -> bool:
    return (a.id is not None and a.id == b.id) or a.key == b.key


# --- reminders ------------------------------------------------------------------------------------
DEPUTY_EVE = "deputy_eve"  # the deputies, the day before (settings.reminder_eve_time)
DEPUTY_HOUR = "deputy_hour"  # the deputies, one hour before
FOLLOWERS_MORNING = "followers_morning"  # followers who asked, the morning of the day
HOUR_BEFORE = timedelta(hours=1)


def due_reminders(reception: Reception, now: datetime, *, eve_at: time, morning_at: time) -> list[str]:
    """The reminder kinds of this reception due at `now`. Each is due until the next one is (a job
    that was down does not send the eve reminder an hour before), and none once it started."""
    if not reception.scheduled or now >= reception.starts_at:
        return []
    hour_before = reception.starts_at - HOUR_BEFORE
    due = []
    if datetime.combine(reception.day - timedelta(days=1), eve_at) <= now < hour_before:
        due.append(DEPUTY_EVE)
    if hour_before <= now:
        due.append(DEPUTY_HOUR)
    if datetime.combine(reception.day, morning_at) <= now:
        due.append(FOLLOWERS_MORNING)
    return due


# --- following a station's receptions -------------------------------------------------------------
@dataclass(frozen=True)
class Follow:
    """A citizen follows a station's receptions. `tagged` says whether WeChat's user tag (per
    town) already mirrors it; the tag job syncs those that do not."""

    openid: str
    station_code: str
    since: datetime
    active: bool = True
    tagged: bool = False
    morning_reminder: bool = True  # the morning-of-the-day reminder of its receptions

    def __deepcopy__(self, memo: dict[int, object]) -> Follow:
        return self  # immutable all through: the memory store's copies need not copy it


# --- the date words citizens ask with -------------------------------------------------------------
@dataclass(frozen=True)
class DateSpan:
    """The days a question asks about, both ends included."""

    first: date
    last: date

    def contains(self, day: date) -> bool:
        return self.first <= day <= self.last


_WEEKDAY = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7, "末": 6}
_RELATIVE = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_WEEKDAY_RE = re.compile(r"(下下|下个?|这个?|本)?(?:周|星期|礼拜)([一二三四五六日天末])")
_PERIOD_RE = re.compile(r"(这|本|下个?|下下个?)(?:周|星期|礼拜)|(这|本|下)个?月")
_MONTH_DAY_RE = re.compile(r"(\d{1,2}|[一二三四五六七八九十]{1,3})月(\d{1,2}|[一二三四五六七八九十]{1,3})[日号]")
_DAY_RE = re.compile(r"(?<![月\d])(\d{1,2})[日号]")
_ISO_RE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})")


def _cn_int(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text == "十":
        return 10
    if text.startswith("十"):
        return 10 + _CN_DIGITS.get(text[1:], 0)
    if len(text) >= 2 and text[1] == "十":
        return _CN_DIGITS.get(text[0], 0) * 10 + (_CN_DIGITS.get(text[2:], 0) if text[2:] else 0)
    return _CN_DIGITS.get(text)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def date_span(text: str, today: date) -> DateSpan | None:
    """The days `text` asks about, relative to `today`; None when it names none.

    今天/明天/后天 · 这周/本周 (today to Sunday) · 下周 · 周六/星期六 (the next one, today
    included) · 下周六 · 周末 · 这个月/下个月 · 12月5日 (next year when already past) · 5号 ·
    2026-12-05."""
    if m := _ISO_RE.search(text):
        day = _safe_date(int(m[1]), int(m[2]), int(m[3]))
        return DateSpan(day, day) if day else None
    if m := _MONTH_DAY_RE.search(text):
        month, dom = _cn_int(m[1]), _cn_int(m[2])
        day = _safe_date(today.year, month or 0, dom or 0)
        if day is None:
            return None
        if day < today:
            day = _safe_date(today.year + 1, day.month, day.day) or day
        return DateSpan(day, day)
    for word in sorted(_RELATIVE, key=len, reverse=True):
        if word in text:
            day = today + timedelta(days=_RELATIVE[word])
            return DateSpan(day, day)
    monday = today - timedelta(days=today.isoweekday() - 1)
    if m := _WEEKDAY_RE.search(text):
        prefix, name = m[1] or "", m[2]
        weeks = 2 if prefix.startswith("下下") else 1 if prefix.startswith("下") else 0
        weekday = _WEEKDAY[name]
        day = monday + timedelta(days=7 * weeks + weekday - 1)
        if not prefix and day < today:
            day += timedelta(days=7)  # a bare 周六 is the coming one
        last = day + timedelta(days=1) if name == "末" else day
        return DateSpan(day, last)
    if m := _PERIOD_RE.search(text):
        if m[1]:
            weeks = 2 if m[1].startswith("下下") else 1 if m[1].startswith("下") else 0
            first = monday + timedelta(days=7 * weeks)
            return DateSpan(max(first, today), first + timedelta(days=6))
        if m[2] == "下":
            first = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
        else:
            first = today
        following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        return DateSpan(first, following - timedelta(days=1))
    if m := _DAY_RE.search(text):
        day = _safe_date(today.year, today.month, int(m[1]))
        if day is None:
            return None
        if day < today:
            day = _safe_date(today.year + (today.month == 12), today.month % 12 + 1, day.day) or day
        return DateSpan(day, day)
    return None


def nearest_first(receptions: Iterable[Reception], *, now: datetime, home_station: str | None,
                  home_town: str | None, town_of: dict[str, str], limit: int) -> list[Reception]:
    """Upcoming scheduled receptions: the citizen's station first, then their town, then the
    district; earliest first within each."""

    def rank(r: Reception) -> tuple[int, datetime]:
        tier = 0 if r.station_code == home_station else 1 if home_town and town_of.get(r.station_code) == home_town else 2
        return (tier, r.starts_at)

    upcoming = [r for r in receptions if r.scheduled and r.ends_at > now]
    return sorted(upcoming, key=rank)[:limit]
