"""SQL repositories of receptions and follows (see storage/sql.py for the unit of work)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.receptions import Follow, FollowUp, Reception, ReceptionStatus
from storage.models import FollowRow, ReceptionRow
from storage.sql_mapping import assign_changed


def reception_of(row: ReceptionRow) -> Reception:
    follow_up = row.follow_up
    return Reception(
        station_code=row.station_code, deputy_codes=tuple(row.deputy_codes or ()), day=row.day,
        start=row.start, end=row.end, topic=row.topic, place=row.place, live_url=row.live_url,
        capacity=row.capacity, status=ReceptionStatus(row.status), id=row.id,
        follow_up=FollowUp(tuple(follow_up["deputies_present"]), follow_up["visitors"], follow_up["notes"])
        if follow_up else None,
    )


def _reception_fields(reception: Reception) -> dict[str, Any]:
    return {
        "station_code": reception.station_code, "deputy_codes": list(reception.deputy_codes),
        "day": reception.day, "start": reception.start, "end": reception.end, "topic": reception.topic,
        "place": reception.place, "live_url": reception.live_url, "capacity": reception.capacity,
        "status": str(reception.status),
        "follow_up": {**asdict(reception.follow_up), "deputies_present": list(reception.follow_up.deputies_present)}
        if reception.follow_up else None,
    }


def _follow_of(row: FollowRow) -> Follow:
    return Follow(row.openid, row.station_code, row.since, row.active, row.tagged, row.morning_reminder)


class SqlReceptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, reception: Reception) -> Reception:
        row = ReceptionRow(**_reception_fields(reception))
        self._s.add(row)
        await self._s.flush()
        return reception_of(row)

    async def get(self, reception_id: int) -> Reception | None:
        row = await self._s.get(ReceptionRow, reception_id)
        return reception_of(row) if row else None

    async def by_key(self, station_code: str, day: date, start: time) -> Reception | None:
        row = await self._s.scalar(select(ReceptionRow).where(
            ReceptionRow.station_code == station_code, ReceptionRow.day == day, ReceptionRow.start == start))
        return reception_of(row) if row else None

    async def save(self, reception: Reception) -> None:
        row = await self._s.get(ReceptionRow, reception.id) if reception.id is not None else None
        if row is None:
            raise LookupError(f"no reception {reception.id}")
        assign_changed(row, _reception_fields(reception))
        await self._s.flush()

    async def between(self, first: date, last: date | None = None,
                      station_codes: Sequence[str] | None = None) -> Sequence[Reception]:
        query = select(ReceptionRow).where(ReceptionRow.day >= first).order_by(
            ReceptionRow.day, ReceptionRow.start, ReceptionRow.id)
        if last is not None:
            query = query.where(ReceptionRow.day <= last)
        if station_codes is not None:
            query = query.where(ReceptionRow.station_code.in_(list(station_codes)))
        return [reception_of(r) for r in await self._s.scalars(query)]


class SqlFollowRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def follow(self, follow: Follow) -> bool:
        row = await self._s.get(FollowRow, (follow.openid, follow.station_code))
        if row is not None and row.active:
            return False
        if row is None:
            self._s.add(FollowRow(openid=follow.openid, station_code=follow.station_code, since=follow.since,
                                  active=True, tagged=False, morning_reminder=follow.morning_reminder))
        else:
            assign_changed(row, {"since": follow.since, "active": True, "tagged": False})
        await self._s.flush()
        return True

    async def unfollow(self, openid: str, station_codes: Sequence[str] | None = None) -> list[str]:
        query = update(FollowRow).where(FollowRow.openid == openid, FollowRow.active.is_(True))
        if station_codes is not None:
            query = query.where(FollowRow.station_code.in_(list(station_codes)))
        result = await self._s.execute(query.values(active=False, tagged=False).returning(FollowRow.station_code))
        return sorted(result.scalars())

    async def of_citizen(self, openid: str) -> Sequence[Follow]:
        rows = await self._s.scalars(select(FollowRow).where(
            FollowRow.openid == openid, FollowRow.active.is_(True)).order_by(FollowRow.since, FollowRow.station_code))
        return [_follow_of(r) for r in rows]

    async def followers(self, station_codes: Sequence[str]) -> Sequence[Follow]:
        rows = await self._s.scalars(select(FollowRow).where(
            FollowRow.station_code.in_(list(station_codes)), FollowRow.active.is_(True)).order_by(FollowRow.openid))
        return [_follow_of(r) for r in rows]

    async def untagged(self, limit: int = 500) -> Sequence[Follow]:
        rows = await self._s.scalars(select(FollowRow).where(FollowRow.tagged.is_(False))
                                     .order_by(FollowRow.station_code, FollowRow.openid).limit(limit))
        return [_follow_of(r) for r in rows]

    async def mark_tagged(self, openid: str, station_code: str) -> None:
        await self._s.execute(update(FollowRow).where(
            FollowRow.openid == openid, FollowRow.station_code == station_code).values(tagged=True))
