"""What only the SQL implementation has to show: concurrent writers on SQLite, optimistic
locking of tickets on PostgreSQL, the engine settings."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

import pytest
from sqlalchemy import text

from bot.core.people import Station, StationKind
from bot.core.tickets import Ticket
from storage.sql import SqlUnitOfWorkFactory

T0 = datetime(2026, 12, 1, 9, 0)


def new_ticket() -> Ticket:
    return Ticket(0, "o1", "其他", "路灯坏了", "松陵", "", "S01", T0)


async def test_sqlite_writers_from_two_engines_queue_instead_of_failing(sql_backend) -> None:
    kind, url = sql_backend
    if kind != "sqlite":
        pytest.skip("SQLite locking")
    # two engines on one file behave like two processes (the server and a CLI import)
    factories = [SqlUnitOfWorkFactory(url), SqlUnitOfWorkFactory(url)]
    async with factories[0]() as uow:
        await uow.stations.upsert(Station("S1", "0", StationKind.STATION, "松陵街道"))
        await uow.commit()

    async def bump(factory: SqlUnitOfWorkFactory) -> None:
        async with factory() as uow:  # read, then write: BEGIN IMMEDIATE makes this safe
            station = await uow.stations.get("S1")
            await asyncio.sleep(0)
            await uow.stations.upsert(dataclasses.replace(station, name=str(int(station.name) + 1)))
            await uow.commit()

    try:
        await asyncio.gather(*(bump(factories[i % 2]) for i in range(20)))
        async with factories[1]() as uow:
            assert (await uow.stations.get("S1")).name == "20"
        async with factories[1].engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            # the wait for the lock is storage/sqlite_inline.py's, off SQLite's busy handler (which
            # would sleep the whole event loop)
            raw = await conn.get_raw_connection()
            assert raw.driver_connection._busy_timeout > 0
    finally:
        for factory in factories:
            await factory.dispose()
