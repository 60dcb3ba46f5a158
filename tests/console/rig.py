"""A console app on a seeded SQL database, with one account per role (and their API tokens)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from seed import NOW, seed

from bot.bootstrap import build_services
from bot.console import add_console_routes, live_api
from bot.console.auth import create_account, issue_token
from bot.settings import Settings
from bot.texts import default_texts
from storage.kv import MemoryKeyValueStore
from storage.live_feed import feed_for

PASSWORD = "一二三四五六七八"
ACCOUNTS = {
    "qu": {"role": "district", "name": "区人大赵主任"},
    "shengze": {"role": "town", "town": "盛泽镇", "name": "盛泽镇王芳"},
    "nanma": {"role": "station", "station": "SZ-02", "name": "南麻站李梅"},
}


@dataclass
class FixedClock:
    at: datetime = NOW

    def now(self) -> datetime:
        return self.at


@dataclass
class ConsoleRig:
    app: web.Application
    numbers: dict[str, int]
    tokens: dict[str, str] = field(default_factory=dict)
    clock: FixedClock = field(default_factory=FixedClock)
    services: Any = None


async def build_rig(uow_factory, must_change: bool = False) -> ConsoleRig:
    numbers = await seed(uow_factory)
    clock = FixedClock()
    tokens = {}
    for username, fields in ACCOUNTS.items():
        await create_account(uow_factory, clock, username=username, password=PASSWORD, **fields)
        tokens[username] = await issue_token(uow_factory, clock, username)
    if not must_change:
        async with uow_factory() as uow:
            for username in ACCOUNTS:
                account = await uow.staff.get(username)
                account.must_change_password = False
                await uow.staff.save(account)
            await uow.commit()
    app = web.Application(client_max_size=Settings().max_body_bytes * 2)  # as the bot's app
    # the actions' use cases on a bus over the same storage, as bot/bootstrap.py mounts them
    kv = MemoryKeyValueStore()
    services = build_services(Settings(), uow=uow_factory, kv=kv, nlu=_NoNLU(), clock=clock)
    # what bot/bootstrap.py puts on the web application for the 云直播 pages and API
    app[live_api.SERVICES], app[live_api.FEED] = services, feed_for(kv, services.settings)
    add_console_routes(app, uow_factory=services.uow, engine=uow_factory.engine, clock=clock,
                       settings=Settings(), texts=default_texts(), services=services)
    return ConsoleRig(app, numbers, tokens, clock, services)


class _NoNLU:
    async def parse(self, text: str):  # the console never parses
        raise AssertionError(text)

    async def learn_places(self, stations) -> None:
        return None
