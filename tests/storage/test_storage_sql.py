"""What only the SQL implementation has to show: concurrent writers on SQLite, optimistic
locking of tickets on PostgreSQL, the engine settings."""
from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm.exc import StaleDataError

from bot.domain import Station, StationKind, Ticket
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
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() > 0
    finally:
        for factory in factories:
            await factory.dispose()


async def test_concurrent_ticket_saves_do_not_silently_overwrite(sql_uow_factory, sql_backend) -> None:
    if sql_backend[0] != "postgres":
        pytest.skip("SQLite serialises units of work; the conflict cannot arise")
    async with sql_uow_factory() as uow:
        number = (await uow.tickets.add(new_ticket())).number
        await uow.commit()
    async with sql_uow_factory() as first, sql_uow_factory() as second:
        a = await first.tickets.get(number)
        b = await second.tickets.get(number)
        a.assign("D001", T0)
        await first.tickets.save(a)
        await first.commit()
        b.assign("D002", T0)
        with pytest.raises(StaleDataError):
            await second.tickets.save(b)
    async with sql_uow_factory() as uow:
        assert (await uow.tickets.get(number)).deputy_code == "D001"
