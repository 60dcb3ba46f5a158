"""Duty roster questions: who is on duty now, when does the next shift start. Pure functions.

A shift's `day` is either a date (2026-12-01) or an ISO weekday 1..7; times are local and a shift
covers [start, end) on that day (shifts do not run past midnight).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from bot.domain import DutyShift


def on_duty(shifts: Iterable[DutyShift], station_code: str, at: datetime) -> list[str]:
    """Codes of the deputies on duty at `station_code` at `at`, sorted, without duplicates."""
    return sorted({s.deputy_code for s in shifts if s.station_code == station_code and s.covers(at)})


def next_shift_start(
    shifts: Iterable[DutyShift], after: datetime, *, station_code: str | None = None
) -> datetime | None:
    """The earliest shift start strictly after `after` (optionally at one station), or None when
    the roster has no future shift. Weekday shifts recur, so at most a week needs looking at."""
    best: datetime | None = None
    for shift in shifts:
        if station_code is not None and shift.station_code != station_code:
            continue
        if not shift.start < shift.end:
            continue  # an empty shift puts nobody on duty
        start = _next_start(shift, after)
        if start is not None and (best is None or start < best):
            best = start
    return best


def _next_start(shift: DutyShift, after: datetime) -> datetime | None:
    if isinstance(shift.day, date):
        start = datetime.combine(shift.day, shift.start)
        return start if start > after else None
    for offset in range(8):  # today .. the same weekday next week
        start = shift.starts_at_on(after.date() + timedelta(days=offset))
        if start is not None and start > after:
            return start
    return None
