"""The assignment policy, written once (Chatwoot's auto-assignment): deputies on duty at the
ticket's station now, fewest open tickets, round robin on ties. The last deputy picked per
station is kept in the key-value store (bot/core/keys.py round_robin).

Used under keys.assign_lock(station), one assignment at a time per station across workers, so
"fewest open tickets" counts every ticket just assigned there by someone else and round robin
state is read and written in order (a deputy on duty at two stations at once is counted per lock).
The district queue waits for the district's own roster (shifts at station `district`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.core import keys
from bot.core.people import Deputy
from bot.core.ports import KeyValueStore, UnitOfWork
from handlers.roster import on_duty
from handlers.routing import choose_deputy

log = logging.getLogger(__name__)


async def on_duty_deputies(uow: UnitOfWork, station_code: str, now: datetime) -> list[Deputy]:
    """Deputies on duty at the station now who exist in the register (a roster row may name a
    deputy that was never imported: skip it rather than assign a ticket to nobody)."""
    codes = on_duty(await uow.duty.list(station_code), station_code, now)
    found = [await uow.deputies.get(code) for code in codes]
    return [d for d in found if d is not None]


@dataclass
class _Station:
    deputies: dict[str, Deputy]
    counts: dict[str, int]
    last: str | None


class Assigner:
    """Picks deputies within one unit of work; its picks count towards the next ones (several
    tickets may go out in one queue drain). `remember()` once the unit of work is committed."""

    def __init__(self, uow: UnitOfWork, kv: KeyValueStore, now: datetime) -> None:
        self._uow, self._kv, self._now = uow, kv, now
        self._stations: dict[str, _Station] = {}
        self._picked: dict[str, str] = {}  # station -> the deputy picked last

    async def _station(self, station_code: str) -> _Station:
        state = self._stations.get(station_code)
        if state is None:
            deputies = {d.code: d for d in await on_duty_deputies(self._uow, station_code, self._now)}
            counts = dict(await self._uow.tickets.open_counts(sorted(deputies))) if deputies else {}
            last = await self._kv.get(keys.round_robin(station_code)) if deputies else None
            state = self._stations[station_code] = _Station(deputies, counts, last)
        return state

    async def pick(self, station_code: str) -> Deputy | None:
        """The deputy who gets the next ticket at this station; None when nobody is on duty."""
        state = await self._station(station_code)
        chosen = choose_deputy(sorted(state.deputies), state.counts, state.last)
        if chosen is None:
            return None
        state.counts[chosen] = state.counts.get(chosen, 0) + 1
        state.last = self._picked[station_code] = chosen
        return state.deputies[chosen]

    async def remember(self) -> None:
        """Round robin state, written after the assignment was committed: losing it only makes
        the next tie go to the first code again, so a failure is logged, never raised."""
        for station_code, deputy_code in self._picked.items():
            try:
                await self._kv.set(keys.round_robin(station_code), deputy_code)
            except Exception:  # noqa: BLE001 - the ticket is already assigned and stored
                log.exception("could not record the last assignment at %s", station_code)
