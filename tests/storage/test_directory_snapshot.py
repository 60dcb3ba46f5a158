"""The process's snapshot of stations, deputies and duty shifts (storage/sql_directory.py): read
once, and never stale after a change made anywhere: another process, plain SQL, the unit of
work itself; a rolled-back change never shows."""
from __future__ import annotations

from datetime import time

from sqlalchemy import event

from bot.core.people import Deputy, DutyShift, Station, StationKind
from storage.sql import SqlUnitOfWorkFactory


def station(code: str, name: str = "松陵街道代表之家") -> Station:
    return Station(code=code, name=name, kind=StationKind.HOME, town="松陵", address="中山路1号")


def deputy(code: str, name: str = "张三", station_code: str = "S01") -> Deputy:
    return Deputy(code=code, name=name, level="区", station_code=station_code, phone="13800000000")


async def seed(factory: SqlUnitOfWorkFactory) -> None:
    async with factory() as uow:
        await uow.stations.upsert(station("S01"))
        await uow.deputies.upsert(deputy("D001"))
        await uow.duty.upsert(DutyShift("S01", "D001", 1, time(9), time(12)))
        await uow.commit()


async def names(factory: SqlUnitOfWorkFactory) -> tuple[list[str], list[str], list[time]]:
    async with factory() as uow:
        return ([s.name for s in await uow.stations.list()], [d.name for d in await uow.deputies.list()],
                [s.end for s in await uow.duty.list("S01")])


class Statements:
    """The SELECTs an engine sends (SQLite's BEGIN is a cursor statement too)."""

    def __init__(self, factory: SqlUnitOfWorkFactory) -> None:
        self.selects: list[str] = []
        event.listen(factory.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects.append(statement)


async def test_a_unit_of_work_reads_one_number_not_the_tables(sql_uow_factory) -> None:
    await seed(sql_uow_factory)
    await names(sql_uow_factory)  # the snapshot is read
    sent = Statements(sql_uow_factory)
    async with sql_uow_factory() as uow:
        assert [s.code for s in await uow.stations.list()] == ["S01"]
        assert (await uow.deputies.get("D001")).name == "张三"
        assert [d.code for d in await uow.deputies.list("S01")] == ["D001"]
        assert len(await uow.duty.list("S01")) == 1
        assert (await uow.stations.get("S01")).name == "松陵街道代表之家"
    assert len(sent.selects) == 1 and "directory_version" in sent.selects[0]


async def test_a_change_by_another_process_is_seen_at_the_next_unit_of_work(sql_uow_factory, sql_backend) -> None:
    await seed(sql_uow_factory)
    assert await names(sql_uow_factory) == (["松陵街道代表之家"], ["张三"], [time(12)])
    other = SqlUnitOfWorkFactory(sql_backend[1])  # its own snapshot, as another worker has
    try:
        async with other() as uow:
            await uow.stations.upsert(station("S01", name="松陵街道人大代表之家"))
            await uow.deputies.upsert(deputy("D002", name="李四"))
            await uow.duty.upsert(DutyShift("S01", "D001", 1, time(9), time(11)))
            await uow.deputies.bind("D002", "openid-li")
            await uow.commit()
    finally:
        await other.dispose()
    assert await names(sql_uow_factory) == (["松陵街道人大代表之家"], ["张三", "李四"], [time(11)])
    async with sql_uow_factory() as uow:
        assert (await uow.deputies.by_openid("openid-li")).code == "D002"


async def test_a_change_in_plain_sql_is_seen(sql_uow_factory) -> None:
    await seed(sql_uow_factory)
    await names(sql_uow_factory)
    async with sql_uow_factory.engine.begin() as conn:
        await conn.exec_driver_sql("UPDATE deputies SET name = '张三丰' WHERE code = 'D001'")
    assert (await names(sql_uow_factory))[1] == ["张三丰"]
    async with sql_uow_factory.engine.begin() as conn:
        await conn.exec_driver_sql("DELETE FROM duty_shifts")
    assert (await names(sql_uow_factory))[2] == []


async def test_a_unit_of_work_sees_its_own_writes_and_a_rollback_leaves_no_trace(sql_uow_factory) -> None:
    await seed(sql_uow_factory)
    await names(sql_uow_factory)
    async with sql_uow_factory() as uow:
        await uow.deputies.upsert(deputy("D002", name="李四"))
        assert [d.name for d in await uow.deputies.list()] == ["张三", "李四"]
        await uow.deputies.upsert(deputy("D003", name="王五"))  # a second write in one transaction
        assert [d.name for d in await uow.deputies.list()] == ["张三", "李四", "王五"]
        await uow.rollback()
        assert [d.name for d in await uow.deputies.list()] == ["张三"]
    assert (await names(sql_uow_factory))[1] == ["张三"]
    async with sql_uow_factory() as uow:
        await uow.deputies.upsert(deputy("D004", name="赵六"))
        await uow.commit()
    assert (await names(sql_uow_factory))[1] == ["张三", "赵六"]
