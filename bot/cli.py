"""The `zhitongche` command line. Messages for staff are in Chinese; they come from config/texts."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.table import Table

from bot.settings import PROJECT_ROOT, Settings
from bot.texts import default_texts

T = TypeVar("T")
console = Console()


def _run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


@asynccontextmanager
async def _storage(settings: Settings) -> AsyncIterator[Callable]:
    """The unit-of-work factory on an up-to-date schema, so staff need no separate migrate step."""
    from storage.migrate import upgrade
    from storage.sql import SqlUnitOfWorkFactory

    await asyncio.to_thread(upgrade, settings.database_url)
    factory = SqlUnitOfWorkFactory(settings.database_url)
    try:
        yield factory
    finally:
        await factory.dispose()


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug output.")
def main(verbose: bool) -> None:
    """直通车 — 有诉求找代表."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        # their routine INFO lines (each migration step, each minute's queue check) drown ours
        for noisy in ("alembic", "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command()
@click.option("--host", default=None, help="Listen address (default ZTC_HOST).")
@click.option("--port", default=None, type=int, help="Listen port (default ZTC_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run the WeChat webhook service."""
    from aiohttp import web

    from bot.app import BotApp, PathOnlyAccessLogger

    settings = Settings()
    bot = BotApp(settings)

    async def app_factory() -> web.Application:
        await bot.start()

        async def on_cleanup(_: web.Application) -> None:
            await bot.stop()

        bot.web_app.on_cleanup.append(on_cleanup)
        return bot.web_app

    web.run_app(app_factory(), host=host or settings.host, port=port or settings.port,
                access_log_class=PathOnlyAccessLogger)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int,
              help="Simulator page; the bot uses port+1, the fake WeChat API port+2.")
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help="SQLite file (default var/demo.db).")
def demo(host: str, port: int, database: Path | None) -> None:
    """Try the bot without a WeChat account: bot + fake WeChat API + chat simulator."""
    from bot.demo import run_demo

    try:
        _run(run_demo(host, port, database))
    except KeyboardInterrupt:
        pass


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date (Alembic)."""
    from storage.migrate import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    console.print(default_texts().get("cli_db_upgraded"))


@main.command("import")
@click.argument("kind", type=click.Choice(["stations", "deputies", "duty"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(kind: str, file: Path) -> None:
    """Import stations, deputies or the duty roster from a CSV or XLSX file."""
    from storage.importer import import_file

    texts = default_texts()

    async def go():
        async with _storage(Settings()) as uow_factory:
            return await import_file(uow_factory, kind, file)

    report = _run(go())
    console.print(texts.get("cli_import_summary", file=file.name, read=report.rows_read,
                            created=report.created, updated=report.updated,
                            unchanged=report.unchanged, errors=len(report.errors)))
    if report.errors:
        table = Table(texts.get("cli_import_line"), texts.get("cli_import_problem"))
        for line, message in report.errors:
            table.add_row(str(line), message)
        console.print(table)
        raise SystemExit(1)


@main.group()
def deputy() -> None:
    """Deputies."""


@deputy.command("bind-code")
@click.argument("deputy_code")
def bind_code(deputy_code: str) -> None:
    """Print a one-time code the deputy sends as 「绑定 <code>」 to link their WeChat."""
    from bot.domain import DomainError
    from bot.ports import SystemClock
    from handlers.deputies import create_bind_code
    from handlers.services import Services
    from storage.kv import MemoryKeyValueStore

    texts = default_texts()
    settings = Settings()

    async def go() -> str:
        async with _storage(settings) as uow_factory:
            services = Services(uow=uow_factory, kv=MemoryKeyValueStore(), nlu=None,  # type: ignore[arg-type]
                                clock=SystemClock(), settings=settings, texts=texts)
            return await create_bind_code(services, deputy_code)

    try:
        code = _run(go())
    except DomainError as error:
        console.print(texts.get(error.key, **error.params))
        raise SystemExit(1) from None
    console.print(texts.get("cli_bind_code", deputy=deputy_code, code=code))


@main.command()
@click.option("--all", "show_all", is_flag=True, help="Also list messages already sent.")
def outbox(show_all: bool) -> None:
    """List outbound messages that are waiting, held or failed."""
    from bot.domain import mask_openid

    texts = default_texts()
    statuses = ("pending", "held", "failed", "sent") if show_all else ("pending", "held", "failed")

    async def go():
        async with _storage(Settings()) as uow_factory:
            async with uow_factory() as uow:
                return await uow.outbox.list(statuses)

    messages = _run(go())
    if not messages:
        console.print(texts.get("cli_outbox_empty"))
        return
    table = Table("id", texts.get("cli_outbox_status"), texts.get("cli_outbox_to"),
                  texts.get("cli_outbox_attempts"), texts.get("cli_outbox_error"),
                  texts.get("cli_outbox_text"))
    for m in messages:
        table.add_row(str(m.id), texts.get(f"outbox_status_{m.status}"), mask_openid(m.recipient_openid),
                      str(m.attempts), m.last_error, m.text[:40])
    console.print(table)


@main.group()
def qrcode() -> None:
    """QR codes that bind a citizen to a station or deputy."""


@qrcode.command("station")
@click.argument("code")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG file (default var/qrcode-station-<code>.png).")
def qrcode_station(code: str, out: Path | None) -> None:
    """Ask the WeChat API for a station's QR code and save a printable PNG."""
    _save_qrcode("station", code, out)


@qrcode.command("deputy")
@click.argument("code")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def qrcode_deputy(code: str, out: Path | None) -> None:
    """Ask the WeChat API for a deputy's QR code and save a printable PNG."""
    _save_qrcode("deputy", code, out)


def _save_qrcode(kind: str, code: str, out: Path | None) -> None:
    import aiohttp

    from bot.wechat.gateway import HttpWeChatGateway
    from storage.kv import build_kv

    texts = default_texts()
    settings = Settings()
    out = out or PROJECT_ROOT / "var" / f"qrcode-{kind}-{code}.png"

    async def go() -> bytes:
        async with _storage(settings) as uow_factory:
            async with uow_factory() as uow:
                repo = uow.stations if kind == "station" else uow.deputies
                if await repo.get(code) is None:
                    raise click.ClickException(texts.get(f"cli_unknown_{kind}", code=code))
        kv = build_kv(settings)
        async with aiohttp.ClientSession() as session:
            try:
                return await HttpWeChatGateway(settings, kv, session).create_qrcode(f"{kind}:{code}")
            finally:
                await kv.close()

    png = _run(go())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    console.print(texts.get("cli_qrcode_saved", path=out))


def _attach_nlu() -> None:
    from nlu.cli import nlu_group

    main.add_command(nlu_group, "nlu")


_attach_nlu()
