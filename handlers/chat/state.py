"""The one conversation state a user has: which scene they are in, its data, and when it expires.

One record per user (`scene:<openid>`) makes "one scene at a time" true by construction: entering
a scene replaces whatever was there. The record outlives its expiry by EXPIRED_KEPT, so an answer
that arrives too late is told "that expired" once (see Dispatcher) instead of being taken for
something new."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.privacy import mask_openid
from bot.core import keys
from bot.core.clock import Clock
from bot.core.ports import KeyValueStore

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

    def __init__(self, kv: KeyValueStore, clock: Clock) -> None:
        self.kv = kv
        self.clock = clock

    async def load(self, openid: str) -> SceneState | None:
        raw = await self.kv.get(keys.scene(openid))
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
        return state

    async def save(self, openid: str, state: SceneState, ttl: float) -> None:
        """Each save renews the expiry: a scene expires `ttl` seconds after the user's last answer."""
        state.expires_at = self.clock.now() + timedelta(seconds=ttl)
        await self.kv.set(keys.scene(openid), state.to_json(), ttl=ttl + EXPIRED_KEPT.total_seconds())

    async def clear(self, openid: str) -> None:
        await self.kv.delete(keys.scene(openid))
