"""Key-value stores behind bot.core.ports.KeyValueStore: in-process memory (one process) and Redis.

Locks are leases: taken for LOCK_LEASE seconds and renewed every LOCK_RENEW_EVERY seconds by a
task of the holder while it is alive, so a holder that died (kill -9) blocks others for seconds.
"""
from __future__ import annotations

import asyncio
import functools
import heapq
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.core.ports import Claim, LockTimeout, StoreUnavailable

if TYPE_CHECKING:
    from bot.core.ports import KeyValueStore
    from bot.settings import Settings

logger = logging.getLogger(__name__)

LOCK_LEASE = 3.0  # seconds a lock outlives its holder's last renewal
LOCK_RENEW_EVERY = 1.0
LOCK_POLL = 0.005  # seconds between tries of a held lock (Redis has no wait on a key)
REDIS_SOCKET_TIMEOUT = 2.0  # a hung Redis is an outage (StoreUnavailable), not a hung request


def printable_key(key: str) -> str:
    """A key for logs and errors: its last part (often an openid) masked."""
    from bot.core.privacy import mask_openid

    head, _, last = key.rpartition(":")
    return f"{head}:{mask_openid(last)}" if head else mask_openid(key)


@asynccontextmanager
async def _renewing(renew: Callable[[], Awaitable[bool]], every: float, key: str,
                    tasks: set[asyncio.Task[None]]) -> AsyncIterator[None]:
    """Runs `renew` every `every` seconds while the body runs (the holder is alive)."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                if not await renew():
                    logger.warning("lock %s was lost while held (its lease ran out)", printable_key(key))
                    return
            except StoreUnavailable:
                continue  # the store is down: retry; the lease may lapse meanwhile

    task = asyncio.get_running_loop().create_task(keep())
    tasks.add(task)  # also a strong reference until it ends
    task.add_done_callback(tasks.discard)
    try:
        yield
    finally:
        task.cancel()


class _MemoryLease:
    """One key's lock in the memory store: who holds it until when, and how many want it."""

    __slots__ = ("holder", "expires", "users", "changed")

    def __init__(self) -> None:
        self.holder: object | None = None
        self.expires = 0.0
        self.users = 0  # holding or waiting: the entry is dropped when none are left
        self.changed = asyncio.Event()  # replaced on every release: waiters hold the old one

    def free(self, now: float) -> bool:
        return self.holder is None or self.expires <= now

    def release(self) -> None:
        self.holder = None
        self.changed.set()
        self.changed = asyncio.Event()


class MemoryKeyValueStore:
    """Same behaviour as the Redis store, for a single process (the demo, unit tests)."""

    def __init__(self, *, lock_lease: float = LOCK_LEASE, lock_renew_every: float = LOCK_RENEW_EVERY) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}
        self._locks: dict[str, _MemoryLease] = {}
        self._lock_lease = lock_lease
        self._renew_every = lock_renew_every
        self._renewals: set[asyncio.Task[None]] = set()
        # (expiry, key), at most one entry a key: what the sweep looks at (a key set again with a
        # later expiry is put back when its old one comes up)
        self._expiries: list[tuple[float, str]] = []
        self._scheduled: set[str] = set()

    def _alive(self, key: str) -> tuple[str, float | None] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= time.monotonic():
            del self._data[key]
            return None
        return entry

    async def get(self, key: str) -> str | None:
        entry = self._alive(key)
        return entry[0] if entry else None

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        now = time.monotonic()
        self._data[key] = (value, now + ttl if ttl else None)
        if ttl:
            self._schedule(key, now + ttl)
        self._sweep(now)

    def _schedule(self, key: str, expires: float) -> None:
        if key not in self._scheduled:
            self._scheduled.add(key)
            heapq.heappush(self._expiries, (expires, key))

    def _sweep(self, now: float) -> None:
        """Keys written once and never read again (de-duplication keys) must not pile up: every
        write drops the entries that expired, in expiry order (no scan of the whole store)."""
        while self._expiries and self._expiries[0][0] <= now:
            _, key = heapq.heappop(self._expiries)
            self._scheduled.discard(key)
            entry = self._data.get(key)
            if entry is None or entry[1] is None:
                continue
            if entry[1] <= now:
                del self._data[key]
            else:
                self._schedule(key, entry[1])

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        if self._alive(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def extend(self, key: str, value: str, ttl: float) -> bool:
        entry = self._alive(key)
        if entry is None or entry[0] != value:
            return False
        expires = time.monotonic() + ttl
        self._data[key] = (value, expires)
        self._schedule(key, expires)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def batch(self, *, sets: Sequence[tuple[str, str, float | None]] = (), deletes: Sequence[str] = (),
                    gets: Sequence[str] = ()) -> list[str | None]:
        for key, value, ttl in sets:
            await self.set(key, value, ttl)
        for key in deletes:
            await self.delete(key)
        return await self.get_many(gets)

    async def claim(self, key: str, value: str, ttl: float, *, seen_key: str, seen_ttl: float,
                    epoch_key: str) -> Claim:
        owned = await self.set_if_absent(key, value, ttl)
        first_seen = owned and await self.set_if_absent(seen_key, "1", seen_ttl)
        await self.set_if_absent(epoch_key, repr(time.time()), EPOCH_TTL)
        return Claim(owned, first_seen, _epoch(await self.get(epoch_key)))

    @asynccontextmanager
    async def lock(self, key: str, timeout: float = 10.0, *,
                   read: Sequence[str] = ()) -> AsyncIterator[list[str | None]]:
        lease = self._locks.setdefault(key, _MemoryLease())
        lease.users += 1
        me = object()
        try:
            await self._acquire(lease, me, key, timeout)

            async def renew() -> bool:
                if lease.holder is not me:
                    return False
                lease.expires = time.monotonic() + self._lock_lease
                return True

            try:
                async with _renewing(renew, self._renew_every, key, self._renewals):
                    yield await self.get_many(read)
            finally:
                if lease.holder is me:
                    lease.release()
                else:
                    logger.warning("lock %s expired before release", printable_key(key))
        finally:
            # a lock nobody holds or waits for is dropped: one per user would otherwise pile up
            lease.users -= 1
            if lease.users == 0 and self._locks.get(key) is lease:
                del self._locks[key]

    async def _acquire(self, lease: _MemoryLease, me: object, key: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if lease.free(now):
                lease.holder, lease.expires = me, now + self._lock_lease
                return
            wait = min(lease.expires, deadline) - now
            if deadline <= now:
                raise LockTimeout(printable_key(key))
            try:  # woken by a release, or when the holder's lease (or our patience) runs out
                await asyncio.wait_for(lease.changed.wait(), wait)
            except TimeoutError:
                pass

    async def close(self) -> None:
        for task in list(self._renewals):
            task.cancel()
        self._data.clear()
        self._expiries.clear()
        self._scheduled.clear()


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _reachable(method: F) -> F:
    """Redis' connection and timeout errors become the port's StoreUnavailable."""

    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc

    return wrapper  # type: ignore[return-value]


# KeyValueStore.lock: KEYS: the lock, then the keys to read once it is taken; ARGV: token, lease ms.
# Returns {1, values…} when taken (a missing value is nil), else nil.
_LOCK_AND_READ = """
if not redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return nil
end
local taken = {1}
if #KEYS > 1 then
  local values = redis.call('mget', unpack(KEYS, 2))
  for i = 1, #KEYS - 1 do
    taken[i + 1] = values[i]
  end
end
return taken
"""

# KEYS[1] is deleted only if it still holds ARGV[1] (a lease that ran out may be another's now)
_RELEASE_IF_HELD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""

# KEYS[1] keeps its value for ARGV[2] more milliseconds only if it still holds ARGV[1]
_EXTEND_IF_HELD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


# KeyValueStore.claim in one round trip. KEYS: key, seen key, epoch key; ARGV: value, ttl ms,
# seen ttl ms, now (unix seconds), epoch ttl ms
_CLAIM = """
local owned = redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') and 1 or 0
local first = 0
if owned == 1 then
  first = redis.call('set', KEYS[2], '1', 'PX', ARGV[3], 'NX') and 1 or 0
end
local epoch = redis.call('get', KEYS[3])
if not epoch then
  redis.call('set', KEYS[3], ARGV[4], 'PX', ARGV[5])
  epoch = ARGV[4]
end
return {owned, first, epoch}
"""


class RedisKeyValueStore:
    """Shared by every worker. All keys live under `prefix`; locks under `<prefix>lock:`."""

    def __init__(self, url: str, prefix: str, *, lock_lease: float = LOCK_LEASE,
                 lock_renew_every: float = LOCK_RENEW_EVERY) -> None:
        import redis.asyncio as redis

        self._client = redis.from_url(url, decode_responses=True, socket_timeout=REDIS_SOCKET_TIMEOUT,
                                      socket_connect_timeout=REDIS_SOCKET_TIMEOUT)
        self._extend_if_held = self._client.register_script(_EXTEND_IF_HELD)
        self._release_if_held = self._client.register_script(_RELEASE_IF_HELD)
        self._lock_and_read = self._client.register_script(_LOCK_AND_READ)
        self._claim = self._client.register_script(_CLAIM)
        self._prefix = prefix
        self._lock_lease = lock_lease
        self._renew_every = lock_renew_every
        self._renewals: set[asyncio.Task[None]] = set()

    def _key(self, key: str) -> str:
        return self._prefix + key

    @_reachable
    async def get(self, key: str) -> str | None:
        value = await self._client.get(self._key(key))
        return None if value is None else str(value)

    @_reachable
    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        return [None if v is None else str(v) for v in await self._client.mget([self._key(k) for k in keys])]

    @_reachable
    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        # milliseconds keep fractional TTLs; a falsy ttl means no expiry, as in the memory store
        await self._client.set(self._key(key), value, px=_millis(ttl) if ttl else None)

    @_reachable
    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self._client.set(self._key(key), value, px=_millis(ttl) if ttl else None, nx=True))

    @_reachable
    async def extend(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self._extend_if_held(keys=[self._key(key)], args=[value, _millis(ttl)]))

    @_reachable
    async def delete(self, key: str) -> None:
        await self._client.delete(self._key(key))

    @_reachable
    async def batch(self, *, sets: Sequence[tuple[str, str, float | None]] = (), deletes: Sequence[str] = (),
                    gets: Sequence[str] = ()) -> list[str | None]:
        pipe = self._client.pipeline(transaction=False)
        for key, value, ttl in sets:
            pipe.set(self._key(key), value, px=_millis(ttl) if ttl else None)
        if deletes:
            pipe.delete(*(self._key(k) for k in deletes))
        if gets:
            pipe.mget([self._key(k) for k in gets])
        if not (sets or deletes or gets):
            return []
        results = await pipe.execute()
        return [None if v is None else str(v) for v in results[-1]] if gets else []

    @_reachable
    async def claim(self, key: str, value: str, ttl: float, *, seen_key: str, seen_ttl: float,
                    epoch_key: str) -> Claim:
        owned, first_seen, epoch = await self._claim(
            keys=[self._key(key), self._key(seen_key), self._key(epoch_key)],
            args=[value, _millis(ttl), _millis(seen_ttl), repr(time.time()), _millis(EPOCH_TTL)])
        return Claim(bool(owned), bool(first_seen), _epoch(epoch))

    @asynccontextmanager
    async def lock(self, key: str, timeout: float = 10.0, *,
                   read: Sequence[str] = ()) -> AsyncIterator[list[str | None]]:
        name, token, lease = self._key("lock:" + key), secrets.token_hex(8), _millis(self._lock_lease)
        values = await self._acquire(name, token, lease, timeout, [self._key(k) for k in read], key)

        async def renew() -> bool:  # the lease starts over, if it is still ours
            return bool(await _reachable(self._extend_if_held)(keys=[name], args=[token, lease]))

        try:
            async with _renewing(renew, self._renew_every, key, self._renewals):
                yield values
        finally:
            try:
                released = await _reachable(self._release_if_held)(keys=[name], args=[token])
            except StoreUnavailable:
                released = True  # Redis is down: the lease runs out by itself
            if not released:  # the lease ran out while we held it; another worker may own it now
                logger.warning("lock %s expired before release", printable_key(key))

    async def _acquire(self, name: str, token: str, lease: int, timeout: float, read: list[str],
                       key: str) -> list[str | None]:
        """The lease taken (SET NX), polled until `timeout`; the `read` keys come with it, in one
        round trip."""
        deadline = time.monotonic() + timeout
        while True:
            taken = await _reachable(self._lock_and_read)(keys=[name, *read], args=[token, lease])
            if taken:
                return [None if v is None else str(v) for v in taken[1:]]
            if time.monotonic() >= deadline:
                raise LockTimeout(printable_key(key))
            await asyncio.sleep(LOCK_POLL)

    async def close(self) -> None:
        for task in list(self._renewals):
            task.cancel()
        await self._client.aclose()


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))


EPOCH_TTL = 10 * 365 * 24 * 3600.0


def _epoch(raw: str | None) -> float:
    """An unreadable epoch counts as now: the careful answer (the store may be new)."""
    try:
        return float(raw) if raw else time.time()
    except ValueError:
        return time.time()


def build_kv(settings: Settings) -> KeyValueStore:
    """Redis when configured (shared by all workers), otherwise one process's memory."""
    if settings.redis_url:
        return RedisKeyValueStore(settings.redis_url, settings.redis_prefix)
    return MemoryKeyValueStore()
