"""`zhitongche demo`: the bot, a local fake of the WeChat API and the chat simulator, on embedded
defaults (SQLite file, in-process stores) seeded with fictional Wujiang data."""
from __future__ import annotations

import asyncio
import logging
import shlex
import sys
from pathlib import Path

from aiohttp import web

from bot.bootstrap import BotApp, PathOnlyAccessLogger
from bot.core import keys
from bot.settings import CONFIG_DIR, PROJECT_ROOT, Settings
from bot.texts import default_texts

log = logging.getLogger(__name__)

DEMO_DIR = CONFIG_DIR / "demo"
DEMO_CITIZENS = ["demo-citizen-1", "demo-citizen-2", "demo-citizen-3"]  # labels: demo_citizen_labels
DEMO_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # demo only: lets the simulator use 安全模式
# template ids the demo's fake WeChat API knows, as a real account's added templates: notices
# outside the 48 h window go out as template messages (fields checked as WeChat does)
DEMO_TEMPLATES = {"assignment": "demo-tpl-assignment", "status": "demo-tpl-status"}
# the 订阅通知 template a reception's announcement goes by to followers who accepted it
DEMO_SUBSCRIBE_TEMPLATES = {"reception": "demo-sub-reception"}


def demo_settings(host: str, port: int, database: Path | None = None) -> Settings:
    database = database or PROJECT_ROOT / "var" / "demo.db"
    return Settings(
        database_url=f"sqlite+aiosqlite:///{database}",
        redis_url="",
        wechat_aes_key=DEMO_AES_KEY,
        wechat_api_base=f"http://{host}:{port + 2}",
        template_id_assignment=DEMO_TEMPLATES["assignment"],
        template_id_status=DEMO_TEMPLATES["status"],
        subscribe_id_reception=DEMO_SUBSCRIBE_TEMPLATES["reception"],
        host=host,
        port=port + 1,
    )


def cli_hint(settings: Settings) -> str:
    """The demo keeps its fictional people out of the real database (var/zhitongche.db); staff trying
    the command line on the demo's data are shown the exact line that points it there."""
    script = Path(sys.executable).parent / "zhitongche"
    return default_texts().get("demo_cli_hint", export=f"export ZTC_DATABASE_URL={shlex.quote(settings.database_url)}",
                               script=shlex.quote(str(script)))


def deputy_openid(code: str) -> str:
    return f"demo-deputy-{code}"


class DemoAccessLogger(PathOnlyAccessLogger):
    # the simulator page polls for pushes every 1.5 s (and asks the fake WeChat API each time)
    quiet_paths = ("/sim/pushes", "/_fake/calls")


async def seed(bot: BotApp) -> list[tuple[str, str]]:
    """Import the demo CSVs (idempotent) and bind every demo deputy to a simulator openid.
    Returns the deputies as simulator identities ({"openid", "label", "group"}: grouped by station)."""
    from storage.importer import import_file

    texts = bot.services.texts
    for kind in ("stations", "deputies", "duty"):
        report = await import_file(bot.services.uow, kind, DEMO_DIR / f"{kind}.csv")
        if report.errors:
            raise RuntimeError(f"demo data {kind}.csv has bad rows: {report.errors}")
    identities = []
    async with bot.services.uow() as uow:
        stations = {s.code: s for s in await uow.stations.list()}
        for deputy in await uow.deputies.list():
            if deputy.openid != deputy_openid(deputy.code):
                await uow.deputies.bind(deputy.code, deputy_openid(deputy.code))
            station = stations.get(deputy.station_code)
            station_name = station.name if station else deputy.station_code
            identities.append({"openid": deputy_openid(deputy.code), "group": station_name,
                               "label": texts.get("demo_deputy_label", name=deputy.name, station=station_name)})
        await uow.commit()
    await bot.services.kv.batch(deletes=keys.all_bound_deputies())  # the accounts just bound are deputies now
    return identities


async def run_demo(host: str = "127.0.0.1", port: int = 8080, database: Path | None = None,
                   stop: asyncio.Event | None = None) -> None:
    """Simulator on `port`, the bot's webhook on port+1, the fake WeChat API on port+2."""
    from bot.console.demo import ensure_demo_account
    from bot.simulator import create_simulator_app
    from bot.wechat.fake_api import FakeWeChatAPI

    settings = demo_settings(host, port, database)
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application, at_port: int) -> None:
        runner = web.AppRunner(app, access_log_class=DemoAccessLogger)
        await runner.setup()
        await web.TCPSite(runner, host, at_port).start()
        runners.append(runner)

    api = FakeWeChatAPI()
    api.templates = set(DEMO_TEMPLATES.values())
    api.subscribe_templates = set(DEMO_SUBSCRIBE_TEMPLATES.values())
    await serve(api.create_app(), port + 2)
    bot = BotApp(settings)
    await bot.start()
    deputies = await seed(bot)
    await bot.run_job("refresh_places")
    await serve(bot.web_app, port + 1)
    citizens = zip(DEMO_CITIZENS, default_texts().raw("demo_citizen_labels"), strict=True)
    identities = [{"openid": openid, "label": label} for openid, label in citizens] + deputies
    simulator = create_simulator_app(
        webhook_url=f"http://{host}:{port + 1}/wechat",
        fake_api_url=f"http://{host}:{port + 2}",
        settings=settings,
        identities=identities,
        safe_mode_default=True,  # the demo's webhook runs in safe mode: plaintext is refused
    )
    await serve(simulator, port)
    print(default_texts().get("demo_started", url=f"http://{host}:{port}/"), flush=True)
    print(cli_hint(settings), flush=True)
    username, password = await ensure_demo_account(bot.services.uow, bot.clock)
    print(default_texts().get("console_demo_login", url=f"http://{host}:{port + 1}/console/", username=username,
                              password=password), flush=True)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        await bot.stop()
