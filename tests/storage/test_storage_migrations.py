"""Migrations produce exactly the schema the models describe, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from storage.migrate import upgrade
from storage.models import Base
from storage.sql_engine import create_engine_for


async def _schema_diff(url: str) -> list:
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata)
            )
    finally:
        await engine.dispose()


def test_sqlite_upgrade_creates_parent_directory_and_matches_models(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "ztc.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    upgrade(url)  # idempotent: already at head
    assert path.exists()
    assert asyncio.run(_schema_diff(url)) == []


@pytest.mark.postgres
def test_postgres_upgrade_matches_models(postgres_database: str) -> None:
    upgrade(postgres_database)
    upgrade(postgres_database)
    assert asyncio.run(_schema_diff(postgres_database)) == []


async def test_upgrade_callable_from_a_running_event_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ztc.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
    finally:
        await engine.dispose()
    assert {"stations", "deputies", "duty_shifts", "tickets", "citizens", "outbox", "bind_codes"} <= tables
    assert mode == "wal"
