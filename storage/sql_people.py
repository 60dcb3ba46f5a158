"""SQL repositories of stations, deputies, duty shifts and citizens (see storage/sql.py)."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from bot.core.people import Citizen, Deputy, DutyShift, Station
from storage.models import CitizenRow, DeputyRow, DutyShiftRow, StationRow
from storage.sql_directory import DirectoryView
from storage.sql_mapping import assign_changed, deputy_of, insert_for, station_of


class _Rows:
    """Keeps the rows a unit of work read alive: the session's identity map holds rows weakly, so
    a row mapped to a domain copy and dropped was read again by the next `get` of the same key
    (a scene note read its citizen twice). A locking read
    (`for_update`) still goes to the database and refreshes the row."""

    def __init__(self, session: AsyncSession) -> None:
        self._s = session
        self._rows: list[Any] = []

    async def _get(self, model: Any, key: Any, for_update: bool = False) -> Any:
        row = await self._s.get(model, key, with_for_update=for_update or None, populate_existing=for_update)
        if row is not None:
            self._rows.append(row)
        return row


class _Directory(_Rows):
    """Reads from the process's snapshot (storage/sql_directory.py); locking reads and writes go
    to the tables."""

    def __init__(self, session: AsyncSession, directory: DirectoryView) -> None:
        super().__init__(session)
        self._directory = directory


class SqlStationRepository(_Directory):
    async def get(self, code: str, *, for_update: bool = False) -> Station | None:
        if not for_update:
            return (await self._directory.get()).station_by_code.get(code)
        row = await self._get(StationRow, code, for_update)
        return station_of(row) if row else None

    async def list(self) -> Sequence[Station]:
        return list((await self._directory.get()).stations)

    async def upsert(self, station: Station) -> bool:
        self._directory.wrote()
        row = await self._s.get(StationRow, station.code)
        if row is not None and station_of(row) == station:
            return False
        fields = {
            "name": station.name,
            "kind": str(station.kind),
            "town": station.town,
            "address": station.address,
            "specialties": list(station.specialties),
            "places": list(station.places),
        }
        if row is None:
            self._s.add(StationRow(code=station.code, **fields))
        else:
            assign_changed(row, fields)
        return True


class SqlDeputyRepository(_Directory):
    async def get(self, code: str, *, for_update: bool = False) -> Deputy | None:
        if not for_update:
            return (await self._directory.get()).deputy_by_code.get(code)
        row = await self._get(DeputyRow, code, for_update)
        return deputy_of(row) if row else None

    async def by_openid(self, openid: str) -> Deputy | None:
        return (await self._directory.get()).deputy_by_openid.get(openid)

    async def list(self, station_code: str | None = None) -> Sequence[Deputy]:
        deputies = (await self._directory.get()).deputies
        return [d for d in deputies if station_code is None or d.station_code == station_code]

    async def upsert(self, deputy: Deputy) -> bool:
        self._directory.wrote()
        row = await self._s.get(DeputyRow, deputy.code)
        fields = {
            "name": deputy.name,
            "level": deputy.level,
            "station_code": deputy.station_code,
            "phone": deputy.phone,
        }
        if row is None:
            self._s.add(DeputyRow(code=deputy.code, openid=deputy.openid, **fields))
            return True
        if all(getattr(row, k) == v for k, v in fields.items()):
            return False
        assign_changed(row, fields)  # the bound openid stays
        return True

    async def bind(self, code: str, openid: str) -> None:
        self._directory.wrote()
        if await self._s.get(DeputyRow, code) is None:
            raise LookupError(f"no deputy {code!r}")
        # one WeChat account speaks for one deputy: a re-bind moves the account (openid is unique,
        # so the old holder is cleared first, in its own statement)
        await self._s.execute(
            update(DeputyRow).where(DeputyRow.openid == openid, DeputyRow.code != code).values(openid=None)
        )
        await self._s.execute(update(DeputyRow).where(DeputyRow.code == code).values(openid=openid))

    async def unbind(self, code: str) -> str | None:
        self._directory.wrote()
        row = await self._get(DeputyRow, code, True)
        if row is None:
            raise LookupError(f"no deputy {code!r}")
        openid, row.openid = row.openid, None
        await self._s.flush()
        return openid


class SqlDutyRepository:
    def __init__(self, session: AsyncSession, directory: DirectoryView) -> None:
        self._s = session
        self._directory = directory
        # a roster import upserts hundreds of shifts: load each station's rows once, not per shift
        self._by_station: dict[str, dict[tuple[str, str, Any], DutyShiftRow]] = {}

    async def list(self, station_code: str | None = None) -> Sequence[DutyShift]:
        shifts = (await self._directory.get()).shifts
        return [s for s in shifts if station_code is None or s.station_code == station_code]

    async def _station_rows(self, station_code: str) -> dict[tuple[str, str, Any], DutyShiftRow]:
        rows = self._by_station.get(station_code)
        if rows is None:
            found = await self._s.scalars(select(DutyShiftRow).where(DutyShiftRow.station_code == station_code))
            rows = self._by_station[station_code] = {(r.deputy_code, r.day_key, r.start): r for r in found}
        return rows

    async def upsert(self, shift: DutyShift) -> bool:
        self._directory.wrote()
        key = shift.day_key
        rows = await self._station_rows(shift.station_code)
        row = rows.get((shift.deputy_code, key, shift.start))
        if row is None:
            is_date = isinstance(shift.day, date)
            row = DutyShiftRow(
                station_code=shift.station_code,
                deputy_code=shift.deputy_code,
                day_key=key,
                day_date=shift.day if is_date else None,
                weekday=None if is_date else int(shift.day),
                start=shift.start,
                end=shift.end,
            )
            self._s.add(row)
            rows[(shift.deputy_code, key, shift.start)] = row
            return True
        if row.end == shift.end:
            return False
        row.end = shift.end
        return True


class SqlCitizenRepository(_Rows):
    async def get(self, openid: str) -> Citizen | None:
        row = await self._get(CitizenRow, openid)
        if row is None:
            return None
        return Citizen(row.openid, row.station_code, row.subscribed, row.scene or "", row.scene_started_at)

    async def save(self, citizen: Citizen) -> None:
        fields = {
            "station_code": citizen.station_code,
            "subscribed": citizen.subscribed,
            "scene": citizen.scene,
            "scene_started_at": citizen.scene_started_at,
        }
        row = await self._s.get(CitizenRow, citizen.openid)
        if row is None:
            self._s.add(CitizenRow(openid=citizen.openid, **fields))
        else:
            assign_changed(row, fields)

    async def note_scene(self, openid: str, scene: str, started_at: datetime | None) -> None:
        fields = {"scene": scene, "scene_started_at": started_at}
        if scene:
            insert = insert_for(self._s)(CitizenRow).values(openid=openid, **fields)
            await self._s.execute(insert.on_conflict_do_update(index_elements=[CitizenRow.openid], set_=fields))
        else:
            await self._s.execute(update(CitizenRow).where(CitizenRow.openid == openid).values(**fields)
                                  .execution_options(synchronize_session=False))
        row = self._s.identity_map.get(identity_key(CitizenRow, openid))
        if row is not None:  # what this unit of work read of the citizen is stale now
            self._s.expire(row)
