"""Fixtures for the end-to-end tests: the app on SQLite + in-process stores and on PostgreSQL + Redis,
each with plaintext and AES-encrypted messages."""
from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from e2e_stack import AES_KEY, APPID, TOKEN, SettableClock, Stack, write_data

from bot.bootstrap import BotApp
from bot.settings import Settings
from bot.wechat.fake_api import FakeWeChatAPI
from storage.importer import import_file

REDIS_URL = os.environ.get("ZTC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["sqlite-memory", "postgres-redis"])
def backend(request) -> str:
    return request.param


@pytest.fixture(params=[False, True], ids=["plain", "aes"])
def encrypted(request) -> bool:
    return request.param


@pytest.fixture
async def stack(backend, encrypted, tmp_path, request) -> AsyncIterator[Stack]:
    api = FakeWeChatAPI(appid=APPID)
    api_server = TestServer(api.create_app())
    await api_server.start_server()
    if backend == "postgres-redis":
        database_url = request.getfixturevalue("postgres_database")
        redis_url = REDIS_URL
        prefix = request.getfixturevalue("redis_prefix")
        await _truncate(database_url)
    else:
        database_url, redis_url, prefix = f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}", "", "ztc:"
    settings = Settings(
        database_url=database_url, redis_url=redis_url, redis_prefix=prefix,
        # plaintext mode has no key: with one set, only encrypted messages are accepted
        wechat_token=TOKEN, wechat_aes_key=AES_KEY if encrypted else "", wechat_appid=APPID,
        wechat_api_base=str(api_server.make_url("")).rstrip("/"),
    )
    clock = SettableClock(datetime(2026, 12, 1, 10, 0))
    bot = BotApp(settings, clock=clock)
    await bot.start()
    for kind, path in write_data(tmp_path).items():
        report = await import_file(bot.services.uow, kind, path)
        assert not report.errors, report.errors
    client = TestClient(TestServer(bot.web_app))
    await client.start_server()
    try:
        yield Stack(bot=bot, client=client, api=api, clock=clock, encrypted=encrypted)
    finally:
        await client.close()
        await bot.stop()
        await api_server.close()
        if backend == "postgres-redis":
            await _clear_redis(prefix)


async def _truncate(database_url: str) -> None:
    """The run's own PostgreSQL database is shared by the tests of this run: start each empty."""
    from storage.migrate import upgrade
    from storage.models import Base
    from sqlalchemy.ext.asyncio import create_async_engine

    await asyncio.to_thread(upgrade, database_url)
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    await engine.dispose()


async def _clear_redis(prefix: str) -> None:
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()
