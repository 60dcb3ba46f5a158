"""In-memory repositories of receptions, follows and broadcasts (the semantics of storage/sql_receptions.py;
the contract suite runs both)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING

from bot.core.broadcasts import LEASE_EXPIRED, Broadcast, BroadcastSend, SendStatus
from bot.core.receptions import Follow, Reception

if TYPE_CHECKING:
    from storage.memory_tables import Staged


class MemoryReceptionRepository:
    def __init__(self, rows: Staged[int, Reception], next_id: Callable[[], int]) -> None:
        self._rows = rows
        self._next_id = next_id

    async def add(self, reception: Reception) -> Reception:
        if await self.by_key(*reception.key) is not None:
            raise ValueError(f"a reception at {reception.key} exists")  # the SQL unique constraint
        stored = replace(reception, id=self._next_id())
        self._rows.put(stored.id, stored)
        return stored

    async def get(self, reception_id: int) -> Reception | None:
        return self._rows.get(reception_id)

    async def by_key(self, station_code: str, day: date, start: time) -> Reception | None:
        return next((r for r in self._rows.values() if r.key == (station_code, day, start)), None)

    async def save(self, reception: Reception) -> None:
        if reception.id is None or self._rows.get(reception.id) is None:
            raise LookupError(f"no reception {reception.id}")
        self._rows.put(reception.id, reception)

    async def between(self, first: date, last: date | None = None,
                      station_codes: Sequence[str] | None = None) -> Sequence[Reception]:
        found = (r for r in self._rows.values() if r.day >= first and (last is None or r.day <= last)
                 and (station_codes is None or r.station_code in station_codes))
        return sorted(found, key=lambda r: (r.day, r.start, r.id or 0))


class MemoryFollowRepository:
    def __init__(self, rows: Staged[tuple[str, str], Follow], tags: Staged[str, int]) -> None:
        self._rows = rows
        self._tags = tags

    async def follow(self, follow: Follow) -> bool:
        current = self._rows.get((follow.openid, follow.station_code))
        if current is not None and current.active:
            return False
        self._rows.put((follow.openid, follow.station_code), replace(follow, active=True, tagged=False))
        return True

    async def unfollow(self, openid: str, station_codes: Sequence[str] | None = None) -> list[str]:
        stopped = []
        for follow in self._rows.values():
            if follow.openid == openid and follow.active and (station_codes is None or follow.station_code in station_codes):
                self._rows.put((openid, follow.station_code), replace(follow, active=False, tagged=False))
                stopped.append(follow.station_code)
        return sorted(stopped)

    async def of_citizen(self, openid: str) -> Sequence[Follow]:
        found = (f for f in self._rows.values() if f.openid == openid and f.active)
        return sorted(found, key=lambda f: (f.since, f.station_code))

    async def followers(self, station_codes: Sequence[str]) -> Sequence[Follow]:
        found = (f for f in self._rows.values() if f.station_code in station_codes and f.active)
        return sorted(found, key=lambda f: f.openid)

    async def untagged(self, limit: int = 500, station_codes: Sequence[str] | None = None) -> Sequence[Follow]:
        found = sorted((f for f in self._rows.values() if not f.tagged
                        and (station_codes is None or f.station_code in station_codes)),
                       key=lambda f: (f.station_code, f.openid))
        return found[:limit]

    async def town_tag(self, town: str) -> int | None:
        return self._tags.get(town)

    async def set_town_tag(self, town: str, tag_id: int) -> None:
        self._tags.put(town, tag_id)

    async def mark_tagged(self, openid: str, station_code: str) -> None:
        follow = self._rows.get((openid, station_code))
        if follow is not None:
            self._rows.put((openid, station_code), replace(follow, tagged=True))


class MemoryBroadcastRepository:
    def __init__(self, broadcasts: Staged[int, Broadcast], sends: Staged[int, BroadcastSend],
                 budget: Staged[tuple[str, str], int], next_id: Callable[[], int]) -> None:
        self._broadcasts = broadcasts
        self._sends = sends
        self._budget = budget
        self._next_id = next_id

    async def add(self, broadcast: Broadcast, sends: Sequence[BroadcastSend]) -> Broadcast:
        stored = replace(broadcast, id=self._next_id())
        self._broadcasts.put(stored.id, stored)
        for send in sends:
            send_id = self._next_id()
            self._sends.put(send_id, replace(send, broadcast_id=stored.id, id=send_id))
        return stored

    async def get(self, broadcast_id: int) -> Broadcast | None:
        return self._broadcasts.get(broadcast_id)

    async def recent(self, station_codes: Sequence[str] | None = None, towns: Sequence[str] | None = None,
                     limit: int = 50, offset: int = 0) -> Sequence[Broadcast]:
        def seen(b: Broadcast) -> bool:
            if station_codes is None and towns is None:
                return True
            return b.audience in ((station_codes or ()) if b.audience_kind == "station" else (towns or ()))

        found = sorted((b for b in self._broadcasts.values() if seen(b)), key=lambda b: (b.created_at, b.id or 0),
                       reverse=True)
        return found[offset:offset + limit]

    async def sends(self, broadcast_id: int) -> Sequence[BroadcastSend]:
        return sorted((s for s in self._sends.values() if s.broadcast_id == broadcast_id), key=lambda s: s.seq)

    async def claim(self, broadcast_id: int | None, now: datetime, until: datetime) -> BroadcastSend | None:
        for send in sorted((s for s in self._sends.values() if broadcast_id in (None, s.broadcast_id)),
                           key=lambda s: (s.broadcast_id, s.seq)):
            if send.status == SendStatus.PENDING or (
                    send.status == SendStatus.CLAIMED and send.claimed_until is not None and send.claimed_until <= now):
                claimed = replace(send, status=SendStatus.CLAIMED, claimed_until=until, attempts=send.attempts + 1,
                                  last_error=LEASE_EXPIRED if send.status == SendStatus.CLAIMED else send.last_error)
                self._sends.put(send.id, claimed)
                return claimed
        return None

    async def save_send(self, send: BroadcastSend) -> None:
        if send.id is None or self._sends.get(send.id) is None:
            raise LookupError(f"no broadcast send {send.id}")
        self._sends.put(send.id, send)

    async def mass_used(self, openids: Sequence[str], month: str) -> dict[str, int]:
        return {o: n for o in openids if (n := self._budget.get((o, month)))}

    async def count_mass(self, openids: Sequence[str], month: str) -> None:
        for openid in openids:
            self._budget.put((openid, month), (self._budget.get((openid, month)) or 0) + 1)


class MemoryReminderRepository:
    def __init__(self, rows: Staged[tuple[int, str], tuple[int, str, datetime, tuple[str, ...]]]) -> None:
        self._rows = rows

    async def claim(self, reception_id: int, kind: str, openids: Sequence[str], at: datetime) -> bool:
        if self._rows.get((reception_id, kind)) is not None:
            return False
        self._rows.put((reception_id, kind), (reception_id, kind, at, tuple(openids)))
        return True

    async def told(self, reception_id: int) -> Sequence[str]:
        done = sorted((at, kind, openids) for rid, kind, at, openids in self._rows.values() if rid == reception_id)
        return list(dict.fromkeys(openid for _, _, openids in done for openid in openids))
