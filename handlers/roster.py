"""Duty roster questions: who is on duty now. Pure functions.

A shift's `day` is either a date (2026-12-01) or an ISO weekday 1..7; times are local and a shift
covers [start, end) on that day (shifts do not run past midnight).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.core.people import DutyShift


def on_duty(shifts: Iterable[DutyShift], station_code: str, at: datetime) -> list[str]:
    """Codes of the deputies on duty at `station_code` at `at`, sorted, without duplicates."""
    return sorted({s.deputy_code for s in shifts if s.station_code == station_code and s.covers(at)})
