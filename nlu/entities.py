"""Deterministic entity extraction: places from the station-data lookup table, ticket numbers,
phone numbers, dates and times. Runs on the normalised text (same indices as the original).

Values:
- place: the canonical name as written in config/demo/stations.csv (`town` column, e.g. 松陵街道,
  开发区; or `places` column, e.g. 南厍村); 松陵 / 松陵镇 / 南厍 are synonyms of those.
- ticket: the number as digits ("1024").
- phone: digits only for mobiles ("13812345678"); area code, "-", number for landlines.
- date: "YYYY-MM-DD"; "--MM-DD" (month and day, no year); "---DD" (day of month);
  "today" | "tomorrow" | "day_after_tomorrow" | "yesterday"; "W1".."W7" (ISO weekday this week),
  "next-W1".."next-W7"; "weekend" | "next-weekend" | "this-week" | "next-week" | "this-month" |
  "next-month". `resolve_date` turns one into a calendar date.
- time: "HH:MM" (24 h), or a part of day: "morning" | "noon" | "afternoon" | "evening" | "night".
"""
from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from typing import Any

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_NUM = r"(?:\d{1,2}|[零〇一二两三四五六七八九十]{1,3})"


def cn_number(s: str) -> int | None:
    """1-99 written in digits or Chinese numerals (十二, 二十一, 三十)."""
    if s.isdigit():
        return int(s)
    if "十" in s:
        head, _, tail = s.partition("十")
        tens = _CN_DIGITS.get(head, None) if head else 1
        ones = _CN_DIGITS.get(tail, None) if tail else 0
        if tens is None or ones is None:
            return None
        return tens * 10 + ones
    if len(s) == 1 and s in _CN_DIGITS:
        return _CN_DIGITS[s]
    return None


_WEEKDAY = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7, "末": 0,
            "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7}

_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d[- ]?\d{4}[- ]?\d{4})(?!\d)|(?<![\d-])(0\d{2,3})[- ]?(\d{7,8})(?!\d)")
_TICKET = re.compile(
    r"#\s?(\d{1,9})(?!\d)"
    r"|(?:编号|单号|工单号|工单|诉求号|诉求编号|工单编号|案号)\s?[:：]?\s?#?(\d{1,9})(?!\d)"
    r"|(?<![\d月路街巷弄楼栋幢座单元室号期第.:/-])(\d{3,9})\s?号(?![楼线院门房室地桥路公库厂车窗位])"
)
_DATE = re.compile(
    r"(?P<y>\d{4})\s?[-/.年]\s?(?P<m>\d{1,2})\s?[-/.月]\s?(?P<d>\d{1,2})[日号]?"
    rf"|(?P<m2>{_NUM})\s?月\s?(?P<d2>{_NUM})\s?[日号]"
    rf"|(?P<rel>今天|今日|今儿|明天|明日|明儿|明早|明晚|后天|昨天|大后天)"
    r"|(?P<wk>(?:下个?|这个?|本|上个?)?(?:周|星期|礼拜))(?P<wd>[一二三四五六日天末1-7])"
    r"|(?P<per>下个?周|下个?星期|这周|本周|这个星期|下个?月|这个月|本月)"
    rf"|(?<![\d月#])(?P<d3>\d{{1,2}})\s?号(?![楼线院门房室地桥路公库厂车窗位])"
)
_TIME = re.compile(
    rf"(?P<part>上午|下午|中午|晚上|早上|凌晨|傍晚|夜里|今晚|早晨)?\s?(?P<h>{_NUM})\s?[点时](?:\s?(?P<half>半)|\s?(?P<mi>\d{{1,2}}|[一二三四五]十[一二三四五六七八九]?)\s?分?|\s?(?P<q>一刻|三刻))?"
    r"|(?P<part2>上午|下午|中午|晚上|早上|凌晨|傍晚|夜里|今晚|早晨)\s?(?P<hh>\d{1,2})[:：](?P<mm>\d{2})"
    r"|(?<!\d)(?P<hh2>[01]?\d|2[0-3])[:：](?P<mm2>[0-5]\d)(?!\d)"
    r"|(?P<part3>上午|下午|中午|晚上|早上|凌晨|傍晚|夜里|今晚|早晨|白天)"
)
# Quick rejects: a character every match of the pattern must contain (each alternative of the
# pattern checked by hand), so a text without one skips that pattern's scan with the same result.
_NEEDS_DIGIT = re.compile(r"\d")  # _PHONE, _TICKET: every alternative captures digits
_DATE_CUE = re.compile(r"[\d月今明后昨大周星礼]")  # digits; 月; 今天…大后天; 周/星期/礼拜
_TIME_CUE = re.compile(r"[\d点时上下中晚早凌傍夜今白]")  # digits or 点/时; the parts of day
_PART = {"上午": "morning", "早上": "morning", "早晨": "morning", "凌晨": "night", "中午": "noon",
         "下午": "afternoon", "傍晚": "evening", "晚上": "evening", "今晚": "evening", "夜里": "night",
         "白天": "morning"}
_REL = {"今天": "today", "今日": "today", "今儿": "today", "明天": "tomorrow", "明日": "tomorrow",
        "明儿": "tomorrow", "明早": "tomorrow", "明晚": "tomorrow", "后天": "day_after_tomorrow",
        "大后天": "in_3_days", "昨天": "yesterday"}


def _hour(part: str | None, h: int) -> int:
    if part in ("下午", "晚上", "傍晚", "今晚") and h < 12:
        return h + 12
    if part == "中午" and h < 6:
        return h + 12
    return h


MAX_PER_KIND = 32  # a 5,000-character letter naming a place 500 times: the first 32 are plenty


def _first(matches: Any, n: int = MAX_PER_KIND) -> Any:
    """The first `n` matches of a finditer: the scan stops there."""
    return itertools.islice(matches, n)


def _trie_pattern(words: list[str]) -> str:
    """One regex of nested alternatives by common prefix: the re engine then rejects a position
    after one character instead of trying every name (a plain a|b|c… alternation is ~20x slower).
    Longer continuations come first, so the longest name wins."""
    trie: dict[str, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        optional = "" in node
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if optional else body

    return emit(trie)


class EntityExtractor:
    """One left-to-right pass per pattern over the whole text (linear: each pattern rejects a
    position in a bounded number of steps, overlaps are checked on a byte mask), and at most
    MAX_PER_KIND matches of each pattern are kept, so neither the work after matching nor the
    result size grows with a pathological text."""

    def __init__(self, places: dict[str, str]) -> None:
        self.places = places
        names = sorted(places, key=len, reverse=True)
        # longest surface wins (同里古镇 before 同里); not inside a longer run of the same name
        self._place_re = re.compile(_trie_pattern(names)) if names else None

    def extract(self, original: str, norm: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        taken = bytearray(len(norm))

        def add(entity: str, value: str, start: int, end: int, synonym: bool = False) -> None:
            if start >= end or any(taken[start:end]):
                return
            taken[start:end] = b"\x01" * (end - start)
            ent: dict[str, Any] = {"entity": entity, "start": start, "end": end, "value": value,
                                   "confidence": 1.0, "extractor": "EmbeddedEntityExtractor"}
            if synonym:
                ent["processors"] = ["EntitySynonymMapper"]
            found.append(ent)

        digits = _NEEDS_DIGIT.search(norm) is not None
        for m in _first(_PHONE.finditer(norm)) if digits else ():
            if m.group(1):
                add("phone", re.sub(r"\D", "", m.group(1)), m.start(1), m.end(1))
            else:
                add("phone", f"{m.group(2)}-{m.group(3)}", m.start(2), m.end())
        for m in _first(_TICKET.finditer(norm)) if digits else ():
            g = next(i for i in (1, 2, 3) if m.group(i))
            # "#1024" keeps its "#"; 编号1024 / 1024号 mark just the number (as the training data does)
            start, end = (m.start(), m.end()) if g == 1 else (m.start(g), m.end(g))
            add("ticket", str(int(m.group(g))), start, end)
        for m in _first(_DATE.finditer(norm)) if digits or _DATE_CUE.search(norm) else ():
            value = self._date_value(m)
            if value:
                add("date", value, m.start(), m.end())
        for m in _first(_TIME.finditer(norm)) if digits or _TIME_CUE.search(norm) else ():
            value = self._time_value(m)
            if value:
                add("time", value, m.start(), m.end())
        if self._place_re is not None:
            for m in _first(self._place_re.finditer(norm)):
                canonical = self.places[m.group()]
                add("place", canonical, m.start(), m.end(), synonym=canonical != original[m.start() : m.end()])
        found.sort(key=lambda e: e["start"])
        return found

    @staticmethod
    def _date_value(m: re.Match[str]) -> str | None:
        if m.group("y"):
            y, mo, d = int(m.group("y")), int(m.group("m")), int(m.group("d"))
            return f"{y:04d}-{mo:02d}-{d:02d}" if 1 <= mo <= 12 and 1 <= d <= 31 else None
        if m.group("m2"):
            mo, d = cn_number(m.group("m2")), cn_number(m.group("d2"))
            if mo and d and 1 <= mo <= 12 and 1 <= d <= 31:
                return f"--{mo:02d}-{d:02d}"
            return None
        if m.group("rel"):
            return _REL[m.group("rel")]
        if m.group("wd"):
            wd = _WEEKDAY[m.group("wd")]
            nxt = m.group("wk").startswith("下")
            if m.group("wk").startswith("上"):
                return None  # past weekdays mean nothing to a schedule question
            if wd == 0:
                return "next-weekend" if nxt else "weekend"
            return f"next-W{wd}" if nxt else f"W{wd}"
        if m.group("per"):
            p = m.group("per")
            if "月" in p:
                return "next-month" if p.startswith("下") else "this-month"
            return "next-week" if p.startswith("下") else "this-week"
        if m.group("d3"):
            d = int(m.group("d3"))
            return f"---{d:02d}" if 1 <= d <= 31 else None
        return None

    @staticmethod
    def _time_value(m: re.Match[str]) -> str | None:
        if m.group("h"):
            h = cn_number(m.group("h"))
            if h is None or h > 24:
                return None
            minute = 0
            if m.group("half"):
                minute = 30
            elif m.group("mi"):
                minute = cn_number(m.group("mi")) or 0
            elif m.group("q"):
                minute = 15 if m.group("q") == "一刻" else 45
            h = _hour(m.group("part"), h) % 24
            return f"{h:02d}:{minute:02d}" if minute < 60 else None
        if m.group("hh"):
            h = _hour(m.group("part2"), int(m.group("hh"))) % 24
            return f"{h:02d}:{int(m.group('mm')):02d}" if int(m.group("mm")) < 60 else None
        if m.group("hh2"):
            return f"{int(m.group('hh2')):02d}:{m.group('mm2')}"
        if m.group("part3"):
            return _PART[m.group("part3")]
        return None


def resolve_date(value: str, today: date) -> date | None:
    """A date entity's value as a calendar date relative to `today` (ranges give their first day)."""
    try:
        if len(value) == 10 and value[4] == "-":
            return date.fromisoformat(value)
        if value.startswith("---"):
            d = int(value[3:])
            candidate = today.replace(day=d) if d <= 28 else None
            if candidate is None:
                import calendar

                last = calendar.monthrange(today.year, today.month)[1]
                candidate = today.replace(day=min(d, last))
            return candidate
        if value.startswith("--"):
            mo, d = int(value[2:4]), int(value[5:7])
            candidate = date(today.year, mo, d)
            return candidate if candidate >= today - timedelta(days=31) else date(today.year + 1, mo, d)
    except ValueError:
        return None
    offsets = {"today": 0, "tomorrow": 1, "day_after_tomorrow": 2, "in_3_days": 3, "yesterday": -1}
    if value in offsets:
        return today + timedelta(days=offsets[value])
    monday = today - timedelta(days=today.isoweekday() - 1)
    if value.startswith("next-W"):
        return monday + timedelta(days=7 + int(value[6:]) - 1)
    if value.startswith("W"):
        return monday + timedelta(days=int(value[1:]) - 1)
    if value == "weekend":
        return monday + timedelta(days=5)
    if value == "next-weekend":
        return monday + timedelta(days=12)
    if value == "this-week":
        return today
    if value == "next-week":
        return monday + timedelta(days=7)
    if value == "this-month":
        return today
    if value == "next-month":
        return date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    return None
