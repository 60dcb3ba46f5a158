"""The running app end to end: real signed/encrypted WeChat XML posted to the aiohttp app, a local
fake WeChat API recording every outbound call, on SQLite + in-process stores and on PostgreSQL + Redis."""
from __future__ import annotations

import asyncio
import os

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiohttp.test_utils import TestClient

from bot.bootstrap import BotApp
from bot.wechat.crypto import MessageCrypto
from bot.wechat.fake_api import FakeWeChatAPI
from bot.wechat.platform import event_xml, message_xml, open_reply, signed_request, text_xml

TOKEN = "e2etoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxe2e0000000000001"
ACCOUNT = "gh_zhitongche"

STATIONS = """code,name,kind,town,address,specialties,places
SL-H,松陵街道代表之家,家,松陵街道,松陵街道人大办,,
SL-01,江村代表联络站,站,松陵街道,江村村委会,城乡建设,江村;梅里社区
KF-LB,开发区劳动保障代表联络站,站,开发区,开发区人力资源市场,劳动和社会保障,
"""
DEPUTIES = """code,name,level,station_code,phone
D001,测试代表甲,区,SL-01,13800000001
D002,测试代表乙,镇,SL-01,13800000002
D003,测试代表丙,市,KF-LB,13800000003
D004,测试代表丁,镇,SL-H,13800000004
"""
# Tuesday 2026-12-01: SL-01 and SL-H staffed 08:00–20:00; KF-LB only from 14:00.
DUTY = """station_code,deputy_code,day,start,end
SL-01,D001,2,08:00,20:00
SL-01,D002,2,08:00,20:00
SL-H,D004,2,08:00,20:00
KF-LB,D003,2,14:00,18:00
"""


class SettableClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


@dataclass
class Stack:
    bot: BotApp
    client: TestClient
    api: FakeWeChatAPI
    clock: SettableClock
    encrypted: bool
    crypto: MessageCrypto = field(init=False)
    created: int = 1764547200

    def __post_init__(self) -> None:
        self.crypto = MessageCrypto(TOKEN, AES_KEY, APPID)

    async def post_xml(self, xml: str, encrypted: bool | None = None):
        encrypted = self.encrypted if encrypted is None else encrypted
        request = signed_request(TOKEN, xml, crypto=self.crypto if encrypted else None)
        return await self.client.post("/wechat", params=request.query, data=request.body.encode())

    async def send(self, openid: str, text: str, *, msg_id: int | None = None) -> str | None:
        """A text message; returns the passive reply's Content (None for `success`)."""
        self.created += 1
        response = await self.post_xml(text_xml(openid, ACCOUNT, text, created_at=self.created, msg_id=msg_id))
        assert response.status == 200, await response.text()
        reply = open_reply(await response.text(), self.crypto)
        return reply.get("Content") if reply else None

    async def message(self, openid: str, msg_type: str, **fields) -> str | None:
        self.created += 1
        response = await self.post_xml(message_xml(openid, ACCOUNT, msg_type, created_at=self.created, **fields))
        assert response.status == 200, await response.text()
        reply = open_reply(await response.text(), self.crypto)
        return reply.get("Content") if reply else None

    async def event(self, openid: str, event: str, key: str = "") -> str | None:
        self.created += 1
        response = await self.post_xml(event_xml(openid, ACCOUNT, event, key, created_at=self.created))
        assert response.status == 200, await response.text()
        reply = open_reply(await response.text(), self.crypto)
        return reply.get("Content") if reply else None

    async def delivered(self) -> None:
        """Wait until the outbox has nothing pending: the app's worker delivers after each commit;
        a pass run here takes what it has not claimed yet."""
        for _ in range(500):
            await self.bot.delivery.run_once()
            async with self.bot.services.uow() as uow:
                if not await uow.outbox.list(("pending",)):
                    return
            await asyncio.sleep(0.01)
        raise AssertionError("the outbox did not drain")

    def pushes(self, openid: str) -> list[str]:
        """Texts of customer-service messages the fake WeChat API accepted for this user."""
        return self.api.sent_texts(openid)


def write_data(folder: Path) -> dict[str, Path]:
    files = {}
    for kind, content in (("stations", STATIONS), ("deputies", DEPUTIES), ("duty", DUTY)):
        files[kind] = folder / f"{kind}.csv"
        files[kind].write_text(content, encoding="utf-8")
    return files


REDIS_URL = os.environ.get("ZTC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def truncate(database_url: str) -> None:
    """The run's own PostgreSQL database is shared by the tests of this run: start each empty."""
    from storage.migrate import upgrade
    from storage.models import data_tables
    from sqlalchemy.ext.asyncio import create_async_engine

    await asyncio.to_thread(upgrade, database_url)
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        tables = ", ".join(f'"{name}"' for name in data_tables())
        await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    await engine.dispose()


async def clear_redis(prefix: str) -> None:
    import redis.asyncio as redis

    client = redis.from_url(REDIS_URL)
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()
