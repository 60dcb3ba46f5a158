"""Shared fixtures: a PostgreSQL database and a Redis key prefix of our own for each test run.

Nothing created outside these names is ever touched."""
from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import AsyncIterator, Iterator

import pytest

RUN_ID = uuid.uuid4().hex[:8]
PG_ADMIN_DSN = os.environ.get("ZTC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ZTC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this run's own; dropped at the end. Yields its SQLAlchemy async URL."""
    import asyncio

    import asyncpg

    name = f"ztc_test_{RUN_ID}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(sql: str) -> None:
        # In its own thread: the fixture may be first requested from inside a running event loop.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, admin(sql)).result()

    run(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_prefix() -> str:
    return f"ztc-test:{RUN_ID}:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def redis_client(redis_prefix: str) -> AsyncIterator[object]:
    """A raw client; on teardown deletes only the keys under this test's prefix."""
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=f"{redis_prefix}*"):
            await client.delete(key)
        await client.aclose()
