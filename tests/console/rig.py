"""A console app on a seeded SQL database, with one account per role (and their API tokens)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from seed import NOW, seed

from bot.console import add_console_routes
from bot.console.auth import create_account, issue_token
from bot.settings import Settings
from bot.texts import default_texts

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


async def build_rig(uow_factory, must_change: bool = False, **console: object) -> ConsoleRig:
    """`console`: more arguments of add_console_routes (services, send_broadcast)."""
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
    app = web.Application()
    add_console_routes(app, uow_factory=uow_factory, engine=uow_factory.engine, clock=clock,
                       settings=console.pop("settings", None) or Settings(), texts=default_texts(), **console)
    return ConsoleRig(app, numbers, tokens, clock)
