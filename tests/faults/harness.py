"""A fault-test rig: a real `zhitongche serve` process (the venv's console script) on PostgreSQL,
a Redis server of the test's own and a fake WeChat API the test controls, fed real signed and
AES-encrypted XML. Servers can be killed with SIGKILL and started again.

    rig = Rig(...)                         # see conftest.py `rig` / `make_rig`
    await rig.start()                      # serve, with rig.serve_args (e.g. ["--workers", "2"])
    reply = await rig.send(openid, "你好")  # the passive reply's Content, or None for `success`
    rig.kill()                             # kill -9 the server; rig.redis.kill() for Redis
    await rig.start()                      # restart on the same port, database and Redis
    await rig.delivered()                  # wait until no outbox message is pending
    rig.api.fail_next(...), rig.api.hang_next(...), rig.api.http_error_next(...), rig.api.delay
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.core.outbound import OutboxMessage, OutboxStatus
from bot.texts import default_texts
from bot.wechat.crypto import MessageCrypto
from bot.wechat.fake_api import FakeWeChatAPI
from bot.wechat.platform import event_xml, next_msg_id, open_reply, signed_request, text_xml
from own_redis import OwnRedis, free_port

TOKEN = "faulttoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxfault0000000001"
ACCOUNT = "gh_zhitongche"
ZHITONGCHE = Path(sys.executable).with_name("zhitongche")  # the venv's console script
TEXTS = default_texts()

STATIONS = """code,name,kind,town,address,specialties,places
SL-01,江村代表联络站,站,松陵街道,江村村委会,城乡建设,江村;梅里社区
"""
DEPUTIES = """code,name,level,station_code,phone
D001,测试代表甲,区,SL-01,13800000001
"""
# on duty around the clock, every day: the fault tests run on the real clock
DUTY = "station_code,deputy_code,day,start,end\n" + "".join(f"SL-01,D001,{d},00:00,24:00\n" for d in range(1, 8))


class FakeWeChatServer:
    """The fake WeChat API on a real port of this test's event loop."""

    def __init__(self) -> None:
        self.api = FakeWeChatAPI(appid=APPID)
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.api.create_app(), shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Rig:
    database_url: str  # this run's PostgreSQL database (SQLAlchemy async URL)
    redis: OwnRedis
    wechat: FakeWeChatServer
    directory: Path
    serve_args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)  # extra ZTC_* settings
    # a new connection per request, so that several workers on one port each get their share
    fresh_connections: bool = False
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    crypto: MessageCrypto = field(init=False)
    starts: int = 0

    def __post_init__(self) -> None:
        self.crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
        self._http: aiohttp.ClientSession | None = None
        self._created = int(time.time())

    @property
    def api(self) -> FakeWeChatAPI:
        return self.wechat.api

    @property
    def log_path(self) -> Path:
        return self.directory / "serve.log"

    def settings_env(self) -> dict[str, str]:
        return {
            "ZTC_DATABASE_URL": self.database_url, "ZTC_REDIS_URL": self.redis.url, "ZTC_REDIS_PREFIX": "ztc:",
            "ZTC_WECHAT_TOKEN": TOKEN, "ZTC_WECHAT_AES_KEY": AES_KEY, "ZTC_WECHAT_APPID": APPID,
            "ZTC_WECHAT_API_BASE": self.wechat.url, "ZTC_WECHAT_TIMEOUT": "2", "ZTC_NLU_BACKEND": "embedded",
            **self.env,
        }

    # --- the server process ---------------------------------------------------------------------
    async def start(self) -> None:
        """Start `zhitongche serve` (again) and wait until /healthz answers."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZTC_")} | self.settings_env()
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [str(ZHITONGCHE), "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.serve_args],
                env=env, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                async with self.http.get(f"{self.base_url}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError(f"serve did not answer /healthz:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9 the server and every process it started (its workers)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    async def stop(self) -> None:
        self.kill()
        if self._http is not None:
            await self._http.close()

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=self.fresh_connections))
        return self._http

    # --- WeChat's side --------------------------------------------------------------------------
    async def post(self, xml: str, timeout: float = 5.0) -> tuple[int, str | None]:
        """POST signed, encrypted XML as WeChat does (it waits 5 s); (status, reply Content)."""
        request = signed_request(TOKEN, xml, crypto=self.crypto)
        async with self.http.post(f"{self.base_url}/wechat", params=request.query, data=request.body.encode(),
                                  timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.text()
            if response.status != 200:
                return response.status, None
            reply = open_reply(body, self.crypto)
            return 200, reply.get("Content") if reply else None

    def text_xml(self, openid: str, text: str, msg_id: int | None = None) -> str:
        self._created += 1
        return text_xml(openid, ACCOUNT, text, created_at=self._created,
                        msg_id=next_msg_id() if msg_id is None else msg_id)

    async def send(self, openid: str, text: str, msg_id: int | None = None, late: float = 15.0) -> str | None:
        """A text message; its passive reply, or (on a busy machine the handler may pass the
        reply deadline) the reply pushed instead, waited for up to `late` seconds."""
        pushed = len(self.api.sent_texts(openid))
        status, reply = await self.post(self.text_xml(openid, text, msg_id))
        assert status == 200, f"{status} for {text!r}"
        deadline = time.monotonic() + late
        while reply is None and time.monotonic() < deadline:
            if self.api.sent_texts(openid)[pushed:]:
                return self.api.sent_texts(openid)[-1]
            await asyncio.sleep(0.1)
        return reply

    async def event(self, openid: str, event: str, key: str = "") -> str | None:
        status, reply = await self.post(event_xml(openid, ACCOUNT, event, key))
        assert status == 200
        return reply

    # --- the database, read and seeded directly -------------------------------------------------
    def uow_factory(self) -> Any:
        from storage.sql import SqlUnitOfWorkFactory

        return SqlUnitOfWorkFactory(self.database_url)

    async def seed(self) -> None:
        """An empty, migrated database with one station, one deputy on duty around the clock."""
        from sqlalchemy.ext.asyncio import create_async_engine

        from storage.importer import import_file
        from storage.migrate import upgrade
        from storage.models import data_tables

        await asyncio.to_thread(upgrade, self.database_url)
        engine = create_async_engine(self.database_url)
        async with engine.begin() as conn:
            tables = ", ".join(f'"{name}"' for name in data_tables())
            await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        await engine.dispose()
        factory = self.uow_factory()
        try:
            for kind, content in (("stations", STATIONS), ("deputies", DEPUTIES), ("duty", DUTY)):
                path = self.directory / f"{kind}.csv"
                path.write_text(content, encoding="utf-8")
                report = await import_file(factory, kind, path)
                assert not report.errors, report.errors
        finally:
            await factory.dispose()

    async def query(self, fn: Any) -> Any:
        """`await fn(uow)` in a unit of work of its own (a read of the shared database)."""
        factory = self.uow_factory()
        try:
            async with factory() as uow:
                return await fn(uow)
        finally:
            await factory.dispose()

    async def outbox(self, *statuses: OutboxStatus) -> list[OutboxMessage]:
        return list(await self.query(lambda uow: uow.outbox.list(statuses or tuple(OutboxStatus))))

    async def delivered(self, timeout: float = 30.0) -> list[OutboxMessage]:
        """Wait until nothing is pending but scheduled retries (no message waits for its first
        attempt); returns the whole outbox then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [m for m in await self.outbox(OutboxStatus.PENDING) if m.attempts == 0]:
                return await self.outbox()
            await asyncio.sleep(0.1)
        raise AssertionError(f"outbox still pending after {timeout}s: {await self.outbox(OutboxStatus.PENDING)}")

    # --- the conversations the tests drive ------------------------------------------------------
    async def bind_deputy(self, code: str = "D001", openid: str = "oDeputy_fault_D001") -> str:
        from datetime import timedelta

        from bot.core.clock import SystemClock

        async def bind(uow: Any) -> None:
            now = SystemClock().now()
            assert await uow.bind_codes.create(code, bind_code, now + timedelta(hours=1), now)
            await uow.commit()

        bind_code = f"{900000 + int(code[1:]):06d}"
        await self.query(bind)
        reply = await self.send(openid, f"绑定 {bind_code}")
        assert reply and "绑定" in reply, reply
        return openid

    async def walk_form(self, openid: str, first: str = "我们村口的路灯坏了一个星期了") -> str:
        """Answer the report form until it asks to confirm; returns that question."""
        reply = await self.send(openid, first)
        for _ in range(10):
            assert reply, "the form went silent"
            if asks(reply, "form_ask_confirm"):
                return reply
            for key, answer in FORM_ANSWERS:
                if asks(reply, key):
                    reply = await self.send(openid, answer)
                    break
            else:
                raise AssertionError(f"unexpected form reply: {reply}")
        raise AssertionError("the form did not reach its confirm question")


FORM_ANSWERS = (  # the form's question key → the citizen's answer
    ("form_ask_phone", "13912345678"),
    ("form_ask_details", "晚上路上一片漆黑，老人出门很不方便"),
    ("form_ask_where", "松陵街道 江村"),
    ("form_ask_where_station", "江村"),
    ("form_ask_what", "路灯坏了"),
)


def asks(reply: str, key: str) -> bool:
    """Whether the reply carries the text `key` (up to its first punctuation or placeholder)."""
    return re.split(r"[，？！。{]", TEXTS.raw(key))[0] in reply


def ticket_number(reply: str | None) -> int | None:
    found = re.search(r"#(\d+)", reply or "")
    return int(found.group(1)) if found else None
