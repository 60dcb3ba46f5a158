"""Fixtures for the end-to-end tests: the app on SQLite + in-process stores and on PostgreSQL + Redis,
each with plaintext and AES-encrypted messages."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from e2e_stack import AES_KEY, APPID, REDIS_URL, TOKEN, SettableClock, Stack, clear_redis, truncate, write_data

from bot.bootstrap import BotApp
from bot.settings import Settings
from bot.wechat.fake_api import FakeWeChatAPI
from storage.importer import import_file

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
        await truncate(database_url)
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
            await clear_redis(prefix)
