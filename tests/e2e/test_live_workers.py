"""Two workers on one PostgreSQL and one Redis: a host's event stream open on the second worker
receives the question a citizen sent through the first worker's /wechat (Redis pub/sub)."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from e2e_stack import REDIS_URL, clear_redis, truncate
from e2e_stack import AES_KEY, APPID, TOKEN, SettableClock, Stack, write_data

from bot.bootstrap import BotApp
from bot.console.auth import create_account, issue_token
from bot.core.live import LiveSession
from bot.settings import Settings
from bot.wechat.fake_api import FakeWeChatAPI
from handlers import live
from storage.importer import import_file

pytestmark = pytest.mark.postgres


async def test_a_question_through_one_worker_reaches_the_stream_of_another(postgres_database, redis_prefix, tmp_path) -> None:
    await truncate(postgres_database)
    api = FakeWeChatAPI(appid=APPID)
    api_server = TestServer(api.create_app())
    await api_server.start_server()
    settings = Settings(database_url=postgres_database, redis_url=REDIS_URL, redis_prefix=redis_prefix,
                        wechat_token=TOKEN, wechat_aes_key=AES_KEY, wechat_appid=APPID,
                        wechat_api_base=str(api_server.make_url("")).rstrip("/"))
    clock = SettableClock(datetime(2026, 12, 1, 10, 0))
    workers = [BotApp(settings, clock=clock), BotApp(settings, clock=clock)]
    clients = []
    try:
        for bot in workers:
            await bot.start()
            clients.append(TestClient(TestServer(bot.web_app)))
            await clients[-1].start_server()
        first = Stack(bot=workers[0], client=clients[0], api=api, clock=clock, encrypted=True)
        for kind, path in write_data(tmp_path).items():
            await import_file(workers[0].services.uow, kind, path)
        session = await live.create_session(workers[0].services, LiveSession(
            "SL-01", "两个进程的直播", "", clock.now() - timedelta(minutes=1), clock.now() + timedelta(hours=1)))
        await create_account(workers[0].services.uow, clock, username="qu", role="district", password="一二三四五六七八")
        token = await issue_token(workers[0].services.uow, clock, "qu")
        stream = await clients[1].get(f"/api/v1/live-sessions/{session.id}/stream",
                                      headers={"Authorization": f"Bearer {token}"})
        assert stream.status == 200
        await stream.content.readline()
        await first.send("oTwoWorkers", session.keyword)
        assert "问题已收到" in await first.send("oTwoWorkers", "河道什么时候清淤", msg_id=9101)

        async def next_event() -> dict:
            while True:
                line = (await stream.content.readline()).decode()
                if line.startswith("data: "):
                    return json.loads(line[6:])

        event = await asyncio.wait_for(next_event(), 5)
        assert event["text"] == "河道什么时候清淤" and event["askers"] == 1
        stream.close()
    finally:
        for client in clients:
            await client.close()
        for bot in workers:
            await bot.stop()
        await api_server.close()
        await clear_redis(redis_prefix)
