"""Pacing of WeChat mass calls within its rate limits, shared by every worker.

WeChat's limits for a 服务号 (the numbers we plan with):
- message/mass/send and message/mass/sendall: at most 60 calls a minute (more are refused) and
  100 calls a day; each call reaches up to 10,000 openids (settings.broadcast_batch);
- each user receives at most 4 mass messages a calendar month (bot/core/broadcasts.py);
- customer-service messages (message/custom/send) to those inside their 48 h window go through the
  outbox and handlers/delivery.py, which sends at most SEND_CONCURRENCY at once.

Mass calls start at least 60 / settings.broadcast_calls_per_minute seconds apart (default 30 a
minute: half WeChat's limit), whichever worker makes them: the last start is one key-value
entry, read and moved on under the store's lock."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bot.core import keys
from bot.core.ports import KeyValueStore


class MassPacer:
    def __init__(self, kv: KeyValueStore, per_minute: float, *, now: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.kv = kv
        self.interval = 60.0 / per_minute
        self._now = now
        self._sleep = sleep

    async def wait(self) -> float:
        """Sleep until a call may start, note it as the last start and return it (epoch seconds).
        The check is made when the call is about to start, so a sender that woke late does not
        bring the next call closer than the interval."""
        while True:
            async with self.kv.lock(keys.mass_pace_lock()):
                now = self._now()
                last = await self.kv.get(keys.mass_pace())
                due = float(last) + self.interval if last else now
                if now >= due:
                    await self.kv.set(keys.mass_pace(), repr(now), ttl=self.interval + 60)
                    return now
            await self._sleep(due - now)
