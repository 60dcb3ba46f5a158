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
    app = web.Application(client_max_size=Settings().max_body_bytes * 2)  # as the bot's app
    # the actions' use cases on a bus over the same storage, as bot/bootstrap.py mounts them
    services = console.pop("services", None) or build_services(Settings(), uow=uow_factory, kv=MemoryKeyValueStore(),
                                                               nlu=_NoNLU(), clock=clock)
    add_console_routes(app, uow_factory=services.uow, engine=uow_factory.engine, clock=clock,
                       settings=console.pop("settings", None) or Settings(), texts=default_texts(), services=services,
                       **console)
    app[live_api.SERVICES], app[live_api.FEED] = services, feed_for(services.kv.store, Settings())  # 云直播, as bootstrap
    return ConsoleRig(app, numbers, tokens, clock, services)


class _NoNLU:
    async def parse(self, text: str):  # the console never parses
        raise AssertionError(text)

    async def learn_places(self, stations) -> None:
        return None


async def build_sending_rig(uow_factory, wechat_base: str):
    """A console rig whose broadcasts go at once (background tasks, `senders`) to the fake WeChat
    API at `wechat_base`: returns (rig, senders, gateway); close the gateway at the end."""
    import asyncio

    from bot.wechat.gateway import HttpMassGateway
    from handlers import broadcasts

    settings = Settings(_env_file=None, wechat_api_base=wechat_base, wechat_appid="wxconsole", wechat_secret="s",
                        broadcast_calls_per_minute=600)
    kv = MemoryKeyValueStore()
    services = build_services(settings, uow=uow_factory, kv=kv, nlu=None, clock=FixedClock())  # type: ignore[arg-type]
    gateway = HttpMassGateway(settings, kv)
    senders: list[asyncio.Task] = []

    def send_now(broadcast_id: int) -> None:
        senders.append(asyncio.create_task(broadcasts.send_pending(services, gateway, broadcast_id)))

    rig = await build_rig(uow_factory, services=services, send_broadcast=send_now, settings=settings)
    return rig, senders, gateway
