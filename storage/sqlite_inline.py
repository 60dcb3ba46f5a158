"""aiosqlite's connection API, run on the event loop's own thread.

aiosqlite runs every call (cursor, execute, fetch, close: four or five per statement) on a worker
thread and wakes the loop for each result. A unit of work holds the process's one SQLite
connection for all of them, so under load each hop waits a whole turn of a busy event loop and
the connection — everyone's — is held for milliseconds per statement: that serialised the webhook
(issue 12, ~60 msg/s). A statement on a local SQLite file takes microseconds: run it in place.

SQLite's busy handler would sleep the whole loop while another process (a CLI import) writes, so
the connection has no busy timeout; a busy statement is retried here with asyncio.sleep (backing
off to 20 ms) until SQLITE_BUSY_TIMEOUT_MS is spent, then the error is raised as before.
"""
from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import aiosqlite

BUSY_FIRST_WAIT = 0.001
BUSY_MAX_WAIT = 0.02


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


class _RunNow:
    """Stands in for aiosqlite's queue to its thread (SQLAlchemy's adapter uses it directly)."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Any]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter, as the thread would
            if future is not None:
                future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """No worker thread: each call runs now, on the caller's thread."""

    def __init__(self, database: str, busy_timeout: float, **kwargs: Any) -> None:
        super().__init__(lambda: sqlite3.connect(database, timeout=0, check_same_thread=False, **kwargs), 64)
        self._tx = _RunNow()  # type: ignore[assignment]
        self._busy_timeout = busy_timeout

    def __await__(self) -> Any:
        return self._connect().__await__()

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
            self._connection.execute("PRAGMA busy_timeout=0")
        return self

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        return await self._retry_busy(fn, args, kwargs)

    async def _retry_busy(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Another connection holds the lock: wait without blocking the loop, then try again."""
        deadline = time.monotonic() + self._busy_timeout
        wait = BUSY_FIRST_WAIT
        while True:
            await asyncio.sleep(wait)
            wait = min(wait * 2, BUSY_MAX_WAIT)
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def inline_creator(database: str, busy_timeout: float) -> Any:
    """For create_async_engine(async_creator=...): inline connections to `database`."""

    async def create() -> InlineConnection:
        return await InlineConnection(database, busy_timeout)

    return create
