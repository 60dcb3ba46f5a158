"""SQL repositories of receptions, follows and broadcasts (see storage/sql.py for the unit of work)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.broadcasts import LEASE_EXPIRED, Broadcast, BroadcastSend, Channel, SendStatus
from bot.core.receptions import Follow, FollowUp, Reception, ReceptionStatus
from storage.models import BroadcastRow, BroadcastSendRow, FollowRow, MassBudgetRow, ReceptionRow, ReminderRow, TownTagRow
from storage.sql_mapping import assign_changed, insert_for


def reception_of(row: ReceptionRow) -> Reception:
    follow_up = row.follow_up
    return Reception(
        station_code=row.station_code, deputy_codes=tuple(row.deputy_codes or ()), day=row.day,
        start=row.start, end=row.end, topic=row.topic, place=row.place, live_url=row.live_url,
        capacity=row.capacity, status=ReceptionStatus(row.status), id=row.id,
        follow_up=FollowUp(tuple(follow_up["deputies_present"]), follow_up["visitors"], follow_up["notes"],
                           tuple(follow_up.get("tickets", ()))) if follow_up else None,
    )


def _reception_fields(reception: Reception) -> dict[str, Any]:
    return {
        "station_code": reception.station_code, "deputy_codes": list(reception.deputy_codes),
        "day": reception.day, "start": reception.start, "end": reception.end, "topic": reception.topic,
        "place": reception.place, "live_url": reception.live_url, "capacity": reception.capacity,
        "status": str(reception.status),
        "follow_up": {**asdict(reception.follow_up), "deputies_present": list(reception.follow_up.deputies_present),
                      "tickets": list(reception.follow_up.tickets)} if reception.follow_up else None,
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

    async def untagged(self, limit: int = 500, station_codes: Sequence[str] | None = None) -> Sequence[Follow]:
        query = select(FollowRow).where(FollowRow.tagged.is_(False))
        if station_codes is not None:
            query = query.where(FollowRow.station_code.in_(list(station_codes)))
        rows = await self._s.scalars(query.order_by(FollowRow.station_code, FollowRow.openid).limit(limit))
        return [_follow_of(r) for r in rows]

    async def town_tag(self, town: str) -> int | None:
        row = await self._s.get(TownTagRow, town)
        return row.tag_id if row else None

    async def set_town_tag(self, town: str, tag_id: int) -> None:
        row = await self._s.get(TownTagRow, town)
        if row is None:
            self._s.add(TownTagRow(town=town, tag_id=tag_id))
        else:
            row.tag_id = tag_id
        await self._s.flush()

    async def mark_tagged(self, openid: str, station_code: str) -> None:
        await self._s.execute(update(FollowRow).where(
            FollowRow.openid == openid, FollowRow.station_code == station_code).values(tagged=True))


def _send_of(row: BroadcastSendRow) -> BroadcastSend:
    return BroadcastSend(row.broadcast_id, row.seq, Channel(row.channel), tuple(row.openids), row.tag_id,
                         SendStatus(row.status), row.claimed_until, row.attempts, row.last_error, row.msg_id,
                         row.sent_at, row.id)


def _broadcast_of(row: BroadcastRow) -> Broadcast:
    return Broadcast(row.audience_kind, row.audience, row.text, row.created_at, dict(row.plan or {}),
                     row.reception_id, row.id, row.created_by or "")


class SqlBroadcastRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, broadcast: Broadcast, sends: Sequence[BroadcastSend]) -> Broadcast:
        row = BroadcastRow(audience_kind=broadcast.audience_kind, audience=broadcast.audience, text=broadcast.text,
                           reception_id=broadcast.reception_id, plan=dict(broadcast.plan),
                           created_at=broadcast.created_at, created_by=broadcast.created_by)
        self._s.add(row)
        await self._s.flush()
        if sends:
            await self._s.execute(insert(BroadcastSendRow), [
                {"broadcast_id": row.id, "seq": s.seq, "channel": str(s.channel), "tag_id": s.tag_id,
                 "openids": list(s.openids), "status": str(s.status), "attempts": 0, "last_error": "", "msg_id": ""}
                for s in sends])
        return _broadcast_of(row)

    async def get(self, broadcast_id: int) -> Broadcast | None:
        row = await self._s.get(BroadcastRow, broadcast_id)
        return _broadcast_of(row) if row else None

    async def recent(self, station_codes: Sequence[str] | None = None, towns: Sequence[str] | None = None,
                     limit: int = 50, offset: int = 0) -> Sequence[Broadcast]:
        query = select(BroadcastRow).order_by(BroadcastRow.created_at.desc(), BroadcastRow.id.desc())
        if station_codes is not None or towns is not None:
            query = query.where(
                ((BroadcastRow.audience_kind == "station") & BroadcastRow.audience.in_(list(station_codes or [])))
                | ((BroadcastRow.audience_kind == "town") & BroadcastRow.audience.in_(list(towns or []))))
        return [_broadcast_of(r) for r in await self._s.scalars(query.limit(limit).offset(offset))]

    async def sends(self, broadcast_id: int) -> Sequence[BroadcastSend]:
        rows = await self._s.scalars(select(BroadcastSendRow).where(BroadcastSendRow.broadcast_id == broadcast_id)
                                     .order_by(BroadcastSendRow.seq))
        return [_send_of(r) for r in rows]

    async def claim(self, broadcast_id: int | None, now: datetime, until: datetime) -> BroadcastSend | None:
        free = (BroadcastSendRow.status == str(SendStatus.PENDING)) | (
            (BroadcastSendRow.status == str(SendStatus.CLAIMED)) & (BroadcastSendRow.claimed_until <= now))
        query = select(BroadcastSendRow.id).where(free).order_by(BroadcastSendRow.broadcast_id, BroadcastSendRow.seq).limit(1)
        if broadcast_id is not None:
            query = query.where(BroadcastSendRow.broadcast_id == broadcast_id)
        if self._s.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        send_id = await self._s.scalar(query)
        if send_id is None:
            return None
        # the condition again in the UPDATE: of two senders that read the same row, one wins
        result = await self._s.execute(
            update(BroadcastSendRow).where(BroadcastSendRow.id == send_id, free)
            .values(status=str(SendStatus.CLAIMED), claimed_until=until, attempts=BroadcastSendRow.attempts + 1,
                    last_error=case((BroadcastSendRow.status == str(SendStatus.CLAIMED), LEASE_EXPIRED),
                                    else_=BroadcastSendRow.last_error))
            .returning(BroadcastSendRow.id))
        if result.scalar_one_or_none() is None:
            return None
        row = await self._s.get(BroadcastSendRow, send_id, populate_existing=True)
        return _send_of(row) if row else None

    async def save_send(self, send: BroadcastSend) -> None:
        row = await self._s.get(BroadcastSendRow, send.id) if send.id is not None else None
        if row is None:
            raise LookupError(f"no broadcast send {send.id}")
        assign_changed(row, {"status": str(send.status), "claimed_until": send.claimed_until,
                             "attempts": send.attempts, "last_error": send.last_error, "msg_id": send.msg_id,
                             "sent_at": send.sent_at})
        await self._s.flush()

    async def mass_used(self, openids: Sequence[str], month: str) -> dict[str, int]:
        used: dict[str, int] = {}
        ids = list(openids)
        for i in range(0, len(ids), 5000):  # bounded IN lists
            rows = await self._s.execute(select(MassBudgetRow.openid, MassBudgetRow.used).where(
                MassBudgetRow.month == month, MassBudgetRow.openid.in_(ids[i:i + 5000])))
            used.update({openid: int(n) for openid, n in rows})
        return used

    async def count_mass(self, openids: Sequence[str], month: str) -> None:
        if not openids:
            return
        await self._s.execute(
            insert_for(self._s)(MassBudgetRow).on_conflict_do_update(index_elements=[MassBudgetRow.openid, MassBudgetRow.month],
                                            set_={"used": MassBudgetRow.used + 1}),
            [{"openid": openid, "month": month, "used": 1} for openid in openids])


class SqlReminderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def claim(self, reception_id: int, kind: str, openids: Sequence[str], at: datetime) -> bool:
        # ON CONFLICT: a second worker waits for the first's commit, then inserts nothing
        result = await self._s.execute(
            insert_for(self._s)(ReminderRow).values(reception_id=reception_id, kind=kind, openids=list(openids), at=at)
            .on_conflict_do_nothing(index_elements=[ReminderRow.reception_id, ReminderRow.kind])
            .returning(ReminderRow.kind))
        return result.scalar_one_or_none() is not None

    async def told(self, reception_id: int) -> Sequence[str]:
        rows = await self._s.scalars(select(ReminderRow).where(ReminderRow.reception_id == reception_id)
                                     .order_by(ReminderRow.at, ReminderRow.kind))
        return list(dict.fromkeys(openid for row in rows for openid in row.openids))
