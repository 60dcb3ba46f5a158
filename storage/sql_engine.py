"""Async SQLAlchemy engines for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.sqlite_inline import InlineConnection, inline_creator

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_outage(error: BaseException) -> bool:
    """Whether `error` says the database cannot be reached (refused, cut, shutting down or starting
    up, pool exhausted), as opposed to a bad statement: the caller answers "try again later"."""
    import asyncpg.exceptions as pg
    from sqlalchemy import exc as sa

    seen: BaseException | None = error
    for _ in range(4):  # SQLAlchemy wraps the driver's error, which may wrap the socket's
        if seen is None:
            return False
        if isinstance(seen, (sa.TimeoutError, pg.PostgresConnectionError, pg.OperatorInterventionError)):
            return True
        # a refused connect comes out raw; an HTTP call's OSError in the same block is not ours
        if isinstance(seen, (OSError, TimeoutError)) and _raised_in_sqlalchemy(seen):
            return True
        if isinstance(seen, sa.DBAPIError) and seen.connection_invalidated:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def _raised_in_sqlalchemy(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("sqlalchemy."):
            return True
        tb = tb.tb_next
    return False


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def ensure_sqlite_directory(url: str) -> None:
    """A SQLite file's parent directory must exist before the first connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


# A pooled connection idle this long is pinged before use (a PostgreSQL restart leaves the pool's
# connections dead). pool_pre_ping pings at every checkout: BEGIN, a query and ROLLBACK, three
# round trips on top of a unit of work's own — under load a connection is back in use within ms.
PING_IDLE_AFTER = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_AFTER:
            return  # just connected, or in use a moment ago
        try:
            dbapi_connection.ping()
        except Exception as error:  # noqa: BLE001 - the pool replaces it and tries again
            raise exc.DisconnectionError("pooled connection is dead") from error


def create_engine_for(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for `url`. SQLite gets WAL, a busy timeout, and BEGIN IMMEDIATE so that
    concurrent writers queue for the write lock instead of failing half-way through a transaction."""
    # a failed statement's parameters (openids, phone numbers) must not reach the logs
    kwargs.setdefault("hide_parameters", True)
    if not is_sqlite(url):
        engine = create_async_engine(url, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            _ping_when_idle(engine)
        return engine

    ensure_sqlite_directory(url)
    database = make_url(url).database
    if database and database != ":memory:" and "creator" not in kwargs and "async_creator" not in kwargs:
        # statements run on the loop's thread (storage/sqlite_inline.py): no thread hop per call
        kwargs["async_creator"] = inline_creator(str(Path(database).expanduser()), SQLITE_BUSY_TIMEOUT_MS / 1000)
    else:
        kwargs.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    # SQLite has one writer at a time: one connection per process lets this process's transactions
    # queue in the pool (woken at once) instead of in SQLite's busy handler (which sleeps and polls).
    kwargs.setdefault("pool_size", 1)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    # every unit of work ends its transaction (commit, or rollback on close): a second ROLLBACK
    # when the pool takes the connection back is a wasted trip to the database thread
    kwargs.setdefault("pool_reset_on_return", None)
    engine = create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take transaction control away from the sqlite3 module; BEGIN is emitted below
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at checkpoints, no fsync per commit
        if not isinstance(dbapi_connection._connection, InlineConnection):  # it waits without blocking
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
