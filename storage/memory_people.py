"""In-memory repositories of stations, deputies, duty shifts, citizens and bind codes (storage/memory.py)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.core.people import Citizen, Deputy, DutyShift, Station
from storage.memory_tables import Staged


def duty_key(shift: DutyShift) -> tuple[str, str, str, Any]:
    """The identity of a shift: (station, deputy, day, start); dates and weekdays never collide."""
    return (shift.station_code, shift.deputy_code, shift.day_key, shift.start)


@dataclass
class BindCode:
    deputy_code: str
    expires_at: datetime
    used_at: datetime | None = None


class MemoryStationRepository:
    def __init__(self, rows: Staged[str, Station]) -> None:
        self._rows = rows

    async def get(self, code: str, *, for_update: bool = False) -> Station | None:
        return self._rows.get(code)  # one process, no await before the write: nothing to lock

    async def list(self) -> Sequence[Station]:
        return sorted(self._rows.values(), key=lambda s: s.code)

    async def upsert(self, station: Station) -> bool:
        if self._rows.get(station.code) == station:
            return False
        self._rows.put(station.code, station)
        return True


class MemoryDeputyRepository:
    def __init__(self, rows: Staged[str, Deputy]) -> None:
        self._rows = rows

    async def get(self, code: str, *, for_update: bool = False) -> Deputy | None:
        return self._rows.get(code)

    async def by_openid(self, openid: str) -> Deputy | None:
        return next((d for d in self._rows.values() if d.openid == openid), None)

    async def list(self, station_code: str | None = None) -> Sequence[Deputy]:
        found = (d for d in self._rows.values() if station_code is None or d.station_code == station_code)
        return sorted(found, key=lambda d: d.code)

    async def upsert(self, deputy: Deputy) -> bool:
        current = self._rows.get(deputy.code)
        if current is not None:
            deputy = replace(deputy, openid=current.openid)  # binding is not the importer's business
            if current == deputy:
                return False
        self._rows.put(deputy.code, deputy)
        return True

    async def bind(self, code: str, openid: str) -> None:
        deputy = self._rows.get(code)
        if deputy is None:
            raise LookupError(f"no deputy {code!r}")
        # one WeChat account speaks for one deputy: a re-bind moves the account
        for other in self._rows.values():
            if other.openid == openid and other.code != code:
                self._rows.put(other.code, replace(other, openid=None))
        self._rows.put(code, replace(deputy, openid=openid))

    async def unbind(self, code: str) -> str | None:
        deputy = self._rows.get(code)
        if deputy is None:
            raise LookupError(f"no deputy {code!r}")
        self._rows.put(code, replace(deputy, openid=None))
        return deputy.openid


def _duty_sort_key(shift: DutyShift) -> tuple[Any, ...]:
    return duty_key(shift)


class MemoryDutyRepository:
    def __init__(self, rows: Staged[tuple[str, str, str, Any], DutyShift]) -> None:
        self._rows = rows

    async def list(self, station_code: str | None = None) -> Sequence[DutyShift]:
        found = (s for s in self._rows.values() if station_code is None or s.station_code == station_code)
        return sorted(found, key=_duty_sort_key)

    async def upsert(self, shift: DutyShift) -> bool:
        key = duty_key(shift)
        if self._rows.get(key) == shift:
            return False
        self._rows.put(key, shift)
        return True


class MemoryCitizenRepository:
    def __init__(self, rows: Staged[str, Citizen]) -> None:
        self._rows = rows

    async def get(self, openid: str) -> Citizen | None:
        return self._rows.get(openid)

    async def save(self, citizen: Citizen) -> None:
        self._rows.put(citizen.openid, citizen)

    async def note_scene(self, openid: str, scene: str, started_at: datetime | None) -> None:
        citizen = self._rows.get(openid)
        if citizen is None and not scene:
            return
        citizen = citizen or Citizen(openid=openid)
        citizen.scene, citizen.scene_started_at = scene, started_at
        self._rows.put(openid, citizen)


class MemoryBindCodeRepository:
    def __init__(self, rows: Staged[str, BindCode]) -> None:
        self._rows = rows

    async def create(self, deputy_code: str, code: str, expires_at: datetime, now: datetime) -> bool:
        entry = self._rows.get(code)
        if entry is not None and entry.used_at is None and entry.expires_at > now:
            return False  # still valid for its deputy: never overwrite it
        self._rows.put(code, BindCode(deputy_code, expires_at))
        return True

    async def consume(self, code: str, now: datetime) -> str | None:
        entry = self._rows.get(code)
        if entry is None or entry.used_at is not None or entry.expires_at <= now:
            return None
        entry.used_at = now
        self._rows.put(code, entry)
        return entry.deputy_code
