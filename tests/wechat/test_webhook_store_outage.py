"""Redis going away under the webhook: a Redis server of this test's own (own port, own empty
directory, no persistence), killed and started again empty. The shared Redis is never touched."""
from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from own_redis import OwnRedis
from test_wechat_webhook import ACCOUNT, CITIZEN, TOKEN, Recorder, make_settings

from bot.webhook import add_webhook_routes
from bot.wechat.crypto import MessageCrypto
from bot.wechat.platform import open_reply, signed_request, text_xml
from storage.kv import RedisKeyValueStore

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def client(own_redis: OwnRedis) -> AsyncIterator[tuple[TestClient, Recorder, MessageCrypto]]:
    settings = make_settings()
    kv = RedisKeyValueStore(own_redis.url, "outage-test:")
    recorder = Recorder()
    app = web.Application()
    add_webhook_routes(app, settings=settings, kv=kv, handle=recorder.handle, late=recorder)
    test_client = TestClient(TestServer(app))
    await test_client.start_server()
    try:
        yield test_client, recorder, MessageCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_appid)
    finally:
        await test_client.close()
        await kv.close()


async def post(test_client: TestClient, crypto: MessageCrypto, text: str, msg_id: int) -> tuple[int, str]:
    req = signed_request(TOKEN, text_xml(CITIZEN, ACCOUNT, text, msg_id=msg_id), crypto=crypto)
    resp = await test_client.post("/wechat", params=req.query, data=req.body.encode())
    return resp.status, await resp.text()


async def test_redis_outage_is_503_with_one_warning_and_recovers_by_itself(
        own_redis: OwnRedis, client, caplog: pytest.LogCaptureFixture) -> None:
    test_client, recorder, crypto = client
    caplog.set_level(logging.INFO)
    status, body = await post(test_client, crypto, "路灯坏了", 1001)
    assert status == 200 and (open_reply(body, crypto) or {}).get("Content") == "收到：路灯坏了"

    for outage in (1, 2):
        handled = len(recorder.handled)
        own_redis.kill()
        caplog.clear()
        statuses = [(await post(test_client, crypto, f"停电中{i}", 2000 + 100 * outage + i))[0] for i in range(10)]
        assert statuses == [503] * 10  # deliberate: WeChat retries
        assert len(recorder.handled) == handled  # nothing ran without its dedupe key
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [r.name for r in warnings] == ["bot.webhook"] and "unavailable" in warnings[0].getMessage()
        assert not [r for r in caplog.records if r.exc_info]  # no traceback per request

        own_redis.start()  # back, and empty
        msg_id = 3000 + outage * 100
        for attempt in range(100):  # the client reconnects by itself; until then still a 503
            status, body = await post(test_client, crypto, "恢复了", msg_id + attempt)
            assert status in (200, 503)
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200 and (open_reply(body, crypto) or {}).get("Content") == "收到：恢复了"
        assert any("is back" in r.getMessage() for r in caplog.records)
        assert len(recorder.handled) == handled + 1
