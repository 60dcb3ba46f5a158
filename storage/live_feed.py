"""The live sessions' update feed (bot.core.ports.LiveFeed): Redis pub/sub, so every worker's
host screens get every update; in-process queues beside the memory key-value store."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from bot.core import keys
from bot.core.ports import KeyValueStore, LiveFeed
from bot.settings import Settings

log = logging.getLogger(__name__)

LISTEN_QUEUE = 1000  # updates a slow screen may lag behind before it is cut off


class _QueueSubscription:
    def __init__(self, queue: asyncio.Queue[str]) -> None:
        self._queue = queue

    async def next(self, timeout: float) -> str | None:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None


class _PubSubSubscription:
    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def next(self, timeout: float) -> str | None:
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None and message.get("type") == "message":
                return str(message["data"])
        return None


class MemoryLiveFeed:
    def __init__(self) -> None:
        self._listeners: dict[int, set[asyncio.Queue[str]]] = defaultdict(set)

    async def publish(self, session_id: int, payload: str) -> None:
        for queue in list(self._listeners.get(session_id, ())):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(payload)

    @contextlib.asynccontextmanager
    async def listen(self, session_id: int) -> AsyncIterator[_QueueSubscription]:
        queue: asyncio.Queue[str] = asyncio.Queue(LISTEN_QUEUE)
        self._listeners[session_id].add(queue)
        try:
            yield _QueueSubscription(queue)
        finally:
            self._listeners[session_id].discard(queue)

    async def close(self) -> None:
        return None


class RedisLiveFeed:
    """Its own connection pool without a read timeout: a subscriber waits as long as it listens."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as redis

        self._client = redis.from_url(url, decode_responses=True, socket_connect_timeout=5)
        self._prefix = prefix

    def _channel(self, session_id: int) -> str:
        return self._prefix + keys.live_feed(session_id)

    async def publish(self, session_id: int, payload: str) -> None:
        try:
            await self._client.publish(self._channel(session_id), payload)
        except Exception:  # noqa: BLE001 - screens miss one update; the queue is in the database
            log.exception("live feed publish failed for session %d", session_id)

    @contextlib.asynccontextmanager
    async def listen(self, session_id: int) -> AsyncIterator[_PubSubSubscription]:
        pubsub: Any = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel(session_id))
        try:
            yield _PubSubSubscription(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe()
                await pubsub.aclose()

    async def close(self) -> None:
        await self._client.aclose()


_FEEDS: weakref.WeakKeyDictionary[Any, LiveFeed] = weakref.WeakKeyDictionary()


def feed_for(kv: KeyValueStore, settings: Settings) -> LiveFeed:
    """One feed per key-value store: Redis pub/sub beside a Redis store, in-process otherwise."""
    from storage.kv import RedisKeyValueStore

    feed = _FEEDS.get(kv)
    if feed is None:
        feed = RedisLiveFeed(settings.redis_url, settings.redis_prefix) if isinstance(kv, RedisKeyValueStore) \
            else MemoryLiveFeed()
        _FEEDS[kv] = feed
    return feed
