"""PostgreSQL pool connections are pinged only after PING_IDLE_AFTER idle (storage/sql_engine.py):
a connection the server killed meanwhile (a restart) is replaced, not handed to a unit of work."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from storage import sql_engine
from storage.sql_engine import create_engine_for
from tests.conftest import PG_ADMIN_DSN

pytestmark = pytest.mark.postgres


async def backend_pids(engine) -> set[int]:
    async with engine.connect() as conn:
        return {(await conn.execute(text("SELECT pg_backend_pid()"))).scalar()}


async def test_a_killed_idle_connection_is_replaced_before_use(postgres_database: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_engine, "PING_IDLE_AFTER", 0.2)
    engine = create_engine_for(postgres_database, pool_size=1, max_overflow=0)
    try:
        [killed] = await backend_pids(engine)
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", killed)
        finally:
            await admin.close()
        await asyncio.sleep(0.3)  # idle past PING_IDLE_AFTER: pinged, found dead, replaced
        [now] = await backend_pids(engine)
        assert now != killed
    finally:
        await engine.dispose()

