"""Unit-of-work factories for the storage tests: memory, SQLite (a fresh file per test) and
PostgreSQL (this run's database, migrated once; our tables are emptied before each test)."""
from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.memory import MemoryUnitOfWorkFactory
from storage.migrate import upgrade
from storage.models import data_tables
from storage.sql import SqlUnitOfWorkFactory

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_database: str) -> str:
    upgrade(postgres_database)
    return postgres_database


def _database_url(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    # sync on purpose: the session fixtures run their own event loops
    if kind == "sqlite":
        path = tmp_path / "ztc.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    return request.getfixturevalue("migrated_postgres")


@pytest.fixture(params=["memory", "sqlite", POSTGRES])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(memory | sqlite | postgres, database URL or "")."""
    kind = request.param
    return kind, "" if kind == "memory" else _database_url(request, kind, tmp_path)


@pytest.fixture(params=["sqlite", POSTGRES])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    return request.param, _database_url(request, request.param, tmp_path)


async def _sql_factory(kind: str, url: str) -> SqlUnitOfWorkFactory:
    factory = SqlUnitOfWorkFactory(url)
    if kind == "postgres":
        # the run's database is shared by all tests: start from empty tables (and numbers at 1001)
        tables = ", ".join(f'"{name}"' for name in data_tables())
        async with factory.engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return factory


@pytest.fixture
async def uow_factory(backend: tuple[str, str]) -> AsyncIterator[object]:
    kind, url = backend
    if kind == "memory":
        yield MemoryUnitOfWorkFactory()
        return
    factory = await _sql_factory(kind, url)
    try:
        yield factory
    finally:
        await factory.dispose()


@pytest.fixture
async def sql_uow_factory(sql_backend: tuple[str, str]) -> AsyncIterator[SqlUnitOfWorkFactory]:
    factory = await _sql_factory(*sql_backend)
    try:
        yield factory
    finally:
        await factory.dispose()
