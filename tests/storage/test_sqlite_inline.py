"""SQLite statements run on the event loop's thread (storage/sqlite_inline.py): a second writer
waits for the lock without blocking the loop, and gives up after its busy timeout."""
from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.sql_engine import create_engine_for
from storage.sqlite_inline import InlineConnection


async def test_engine_connections_are_inline(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, InlineConnection)
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_a_busy_writer_waits_without_blocking_the_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    first, second = create_engine_for(url), create_engine_for(url)
    try:
        async with first.begin() as conn:
            await conn.execute(text("CREATE TABLE t (a INTEGER)"))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        async def second_writer() -> float:
            async with second.begin() as conn:  # BEGIN IMMEDIATE: waits for the first's lock
                await conn.execute(text("INSERT INTO t VALUES (2)"))
            return time.monotonic()

        ticking = asyncio.create_task(ticker())
        async with first.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            waiting = asyncio.create_task(second_writer())
            await asyncio.sleep(0.3)  # holding the write lock
            assert not waiting.done()
            released = time.monotonic()
        done_at = await asyncio.wait_for(waiting, 10)
        ticking.cancel()
        assert done_at >= released
        assert ticks >= 20  # the loop kept running while the second writer waited
        async with second.connect() as conn:
            assert sorted((await conn.execute(text("SELECT a FROM t"))).scalars()) == [1, 2]
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_lock_held_past_the_busy_timeout_is_an_error(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (a INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    conn = await InlineConnection(path, busy_timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await conn.execute("BEGIN IMMEDIATE")
        assert 0.2 <= time.monotonic() - started < 2
    finally:
        await conn.close()
        holder.execute("ROLLBACK")
        holder.close()
