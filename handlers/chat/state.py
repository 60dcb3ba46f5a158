"""The one conversation state a user has: which scene they are in, its data, and when it expires.

One record per user (`scene:<openid>`) makes "one scene at a time" true by construction: entering
a scene replaces whatever was there. The record outlives its expiry by EXPIRED_KEPT, so an answer
that arrives too late is told "that expired" once (see Dispatcher) instead of being taken for
something new.

Redis may come back empty. Entering a scene also notes it on the user's Citizen row (the
database), and the key-value store holds STORE_EPOCH, the time its content began. A user with
no state whose noted scene started before the epoch lost their state with the store: `lost()`
says which scene, so its first answer is told so once instead of being taken for something new."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.privacy import mask_openid
from bot.core import keys
from bot.core.clock import Clock
from bot.core.ports import KeyValueStore, UnitOfWorkFactory

log = logging.getLogger(__name__)

EXPIRED_KEPT = timedelta(hours=24)


@dataclass
class SceneState:
    scene: str
    data: dict[str, Any]
    started_at: datetime
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def to_json(self) -> str:
        return json.dumps({"scene": self.scene, "data": self.data,
                           "started_at": self.started_at.isoformat(timespec="seconds"),
                           "expires_at": self.expires_at.isoformat(timespec="seconds")}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> SceneState:
        """ValueError / TypeError / KeyError on anything that is not a state record."""
        record = json.loads(raw)
        if not isinstance(record["data"], dict):
            raise TypeError("scene data is not an object")
        return cls(str(record["scene"]), record["data"], datetime.fromisoformat(record["started_at"]),
                   datetime.fromisoformat(record["expires_at"]))


class SceneStore:
    """Reads and writes the per-user state record (under the user's lock: see Dispatcher)."""

    def __init__(self, kv: KeyValueStore, clock: Clock, uow: UnitOfWorkFactory) -> None:
        self.kv = kv
        self.clock = clock
        self.uow = uow

    async def load(self, openid: str) -> SceneState | None:
        return (await self.load_checked(openid))[0]

    @staticmethod
    def read_keys(openid: str) -> list[str]:
        """What load_checked reads."""
        return [keys.scene(openid), keys.scene_checked(openid), keys.STORE_EPOCH]

    async def load_checked(self, openid: str) -> tuple[SceneState | None, bool, str | None]:
        """The state, whether `lost()` already found nothing lost for this user, and the store's
        epoch as stored (None: none yet), for `lost()` — one round trip."""
        raw, checked, epoch = await self.kv.get_many(self.read_keys(openid))
        return await self._parse(openid, raw), checked is not None, epoch

    async def _parse(self, openid: str, raw: str | None) -> SceneState | None:
        if raw is None:
            return None
        try:
            return SceneState.from_json(raw)
        except (ValueError, TypeError, KeyError):
            log.warning("dropping unreadable conversation state of %s", mask_openid(openid))
            await self.clear(openid)
            return None

    async def enter(self, openid: str, scene: str, data: dict[str, Any], ttl: float) -> SceneState:
        now = self.clock.now()
        state = SceneState(scene, data, started_at=now, expires_at=now)
        await self.save(openid, state, ttl)
        await self._note(openid, scene, now)
        return state

    async def save(self, openid: str, state: SceneState, ttl: float) -> None:
        """Each save renews the expiry: a scene expires `ttl` seconds after the user's last answer."""
        state.expires_at = self.clock.now() + timedelta(seconds=ttl)
        await self.kv.set(keys.scene(openid), state.to_json(), ttl=ttl + EXPIRED_KEPT.total_seconds())

    async def clear(self, openid: str) -> None:
        await self.kv.delete(keys.scene(openid))
        await self._note(openid, "", None)

    async def lost(self, openid: str, *, checked: bool | None = None, epoch: str | None = None) -> str | None:
        """The scene whose state this user lost when the key-value store came back empty, if any.
        Reads the database only within EXPIRED_KEPT of the store's epoch, and once per user: a
        user found with nothing lost stays so for this epoch (a scene entered later began after
        it), which the store remembers (keys.scene_checked) and forgets with the rest. `checked`
        and `epoch`: what load_checked read (else they are read here)."""
        if checked is None:
            checked = await self.kv.get(keys.scene_checked(openid)) is not None
        if checked:
            return None
        now = self.clock.now()
        began = await self.epoch(now, epoch)
        if now - began > EXPIRED_KEPT:
            return None
        async with self.uow() as uow:
            citizen = await uow.citizens.get(openid)
        if citizen is not None and citizen.scene and citizen.scene_started_at is not None \
                and began - EXPIRED_KEPT < citizen.scene_started_at < began:
            return citizen.scene
        remaining = (EXPIRED_KEPT - (now - began)).total_seconds()
        if remaining > 0:
            await self.kv.set(keys.scene_checked(openid), "1", ttl=remaining)
        return None

    async def epoch(self, now: datetime, raw: str | None = None) -> datetime:
        """When the key-value store's content began: set now if the store has none (it is new or
        came back empty). `raw`: its value just read, if any."""
        if raw is None:
            raw = await self.kv.get(keys.STORE_EPOCH)
        if raw is None:
            await self.kv.set_if_absent(keys.STORE_EPOCH, now.isoformat(), _EPOCH_TTL)
            raw = await self.kv.get(keys.STORE_EPOCH)
        try:
            return datetime.fromisoformat(raw) if raw else now
        except ValueError:
            return now

    async def _note(self, openid: str, scene: str, at: datetime | None) -> None:
        """The durable note of the scene last entered ("" once it is left)."""
        async with self.uow() as uow:
            await uow.citizens.note_scene(openid, scene, at)
            await uow.commit()


_EPOCH_TTL = 10 * 365 * 24 * 3600.0
