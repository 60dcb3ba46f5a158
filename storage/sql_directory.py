"""Stations, deputies and duty shifts as one snapshot per process.

Almost every message reads them (routing a report, the schedule answer, a citizen's station) and
staff change them a few times a week, so each unit of work reads one number instead of the three
tables: `directory_version`, changed by triggers on every write to them (migration 0015). The
snapshot is re-read when the number differs from the one it was read at. The number is read
through the session, so the unit of work's own pending changes are flushed first and a unit of
work that wrote sees them; a write through a repository makes it read the number again."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.people import Deputy, DutyShift, Station
from storage.models import DeputyRow, DirectoryVersionRow, DutyShiftRow, StationRow
from storage.sql_mapping import columns_of, deputy_of, shift_of, station_of


# built once: every unit of work that reads the directory runs it
_VERSION = select(DirectoryVersionRow.version).where(DirectoryVersionRow.id == 1)


@dataclass(frozen=True)
class Directory:
    version: int | None  # None: read for one unit of work, never shared
    stations: tuple[Station, ...]  # by code
    deputies: tuple[Deputy, ...]  # by code
    shifts: tuple[DutyShift, ...]  # by station, deputy, day, start
    station_by_code: dict[str, Station] = field(init=False)
    deputy_by_code: dict[str, Deputy] = field(init=False)
    deputy_by_openid: dict[str, Deputy] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "station_by_code", {s.code: s for s in self.stations})
        object.__setattr__(self, "deputy_by_code", {d.code: d for d in self.deputies})
        object.__setattr__(self, "deputy_by_openid", {d.openid: d for d in self.deputies if d.openid})


class DirectoryCache:
    """The process's snapshot; one per SqlUnitOfWorkFactory (so per database)."""

    def __init__(self) -> None:
        self.current: Directory | None = None


class DirectoryView:
    """A unit of work's access to the snapshot: the number is read once. After the unit of work
    wrote to the directory it reads the tables for itself alone (its changes are not committed,
    and on PostgreSQL the number stays its transaction's id through its later writes)."""

    def __init__(self, cache: DirectoryCache, session: AsyncSession) -> None:
        self._cache, self._s = cache, session
        self._checked: Directory | None = None
        self._wrote = False

    def wrote(self) -> None:
        self._checked, self._wrote = None, True

    def forget(self) -> None:
        """After a rollback: the unit of work's writes are gone."""
        self._checked, self._wrote = None, False

    async def get(self) -> Directory:
        if self._checked is None:
            self._checked = await self._read()
        return self._checked

    async def _read(self) -> Directory:
        if self._wrote:  # its own writes, not committed: for this unit of work alone
            return await self._load(None)
        version = await self._s.scalar(_VERSION)
        current = self._cache.current
        if current is not None and version is not None and current.version == version:
            return current
        current = await self._load(version)
        if version is not None:  # no row (a database emptied by hand): nothing can be trusted
            self._cache.current = current
        return current

    async def _load(self, version: int | None) -> Directory:
        stations = await self._s.execute(select(*columns_of(StationRow)).order_by(StationRow.code))
        deputies = await self._s.execute(select(*columns_of(DeputyRow)).order_by(DeputyRow.code))
        shifts = await self._s.execute(select(*columns_of(DutyShiftRow)).order_by(
            DutyShiftRow.station_code, DutyShiftRow.deputy_code, DutyShiftRow.day_key, DutyShiftRow.start))
        return Directory(version, tuple(station_of(r) for r in stations), tuple(deputy_of(r) for r in deputies),
                         tuple(shift_of(r) for r in shifts))
