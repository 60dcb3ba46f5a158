"""One scheduler leader among the workers: a lease in the key-value store (keys.SCHEDULER_LEADER).

Every worker runs the same scheduler with the jobs' normal triggers; at each firing a job runs
only in the process that holds the lease. The holder renews it every RENEW_EVERY seconds; the
others try to take it as often, so when the holder dies (kill -9) another takes over at most
LEASE + RENEW_EVERY seconds later. A clean stop lets the lease go at once.

Taking over runs nothing by itself: the new leader runs each job at its next firing, as the old
one would have. A leader that stalls past its lease may still be finishing a job when the next
one starts it; the jobs are safe for that (claims per reception and kind, broadcast sends claimed
as rows, per-station assignment locks)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from bot.core import keys
from bot.core.ports import KeyValueStore, StoreUnavailable

log = logging.getLogger(__name__)

LEASE = 5.0  # seconds the lease outlives its holder's last renewal
RENEW_EVERY = 1.0


class SchedulerLeader:
    """`await start()` makes one attempt at once (a single process is leader right after it),
    then keeps the lease (or tries for it) in the background; `is_leader` says whether this
    process may run jobs now; `await stop()` lets the lease go."""

    def __init__(self, kv: KeyValueStore, *, lease: float = LEASE, renew_every: float = RENEW_EVERY) -> None:
        self._kv = kv
        self._lease, self._renew_every = lease, renew_every
        # who holds it, readable by an operator (and the fault tests): host, pid, a unique part
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._tick()
        self._task = asyncio.get_running_loop().create_task(self._keep())

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            await self._tick()

    async def _tick(self) -> None:
        try:
            # ours still (renewed), or free (taken); a holder whose lease ran out may take it back
            held = (await self._kv.extend(keys.SCHEDULER_LEADER, self.identity, self._lease)
                    or await self._kv.set_if_absent(keys.SCHEDULER_LEADER, self.identity, self._lease))
        except StoreUnavailable:
            held = False  # cannot renew: another may hold it once the store is back
        except Exception:  # noqa: BLE001 - the loop must survive; jobs wait meanwhile
            log.exception("scheduler leader: lease check failed")
            held = False
        if held != self.is_leader:
            self.is_leader = held
            if held:
                log.info("scheduler leader: this process (pid %d) runs the scheduled jobs", os.getpid())
            else:
                log.warning("scheduler leader: this process (pid %d) lost the lease; jobs run elsewhere",
                            os.getpid())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.is_leader:
            self.is_leader = False
            with contextlib.suppress(Exception):
                # expires in a millisecond, only if still ours: the next worker takes over at once
                await self._kv.extend(keys.SCHEDULER_LEADER, self.identity, 0.001)
