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
T = default_texts().get  # command help is shown to staff: Chinese, from config/texts/cli.yaml


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


@click.group(help=T("cli_help_main"))
@click.option("-v", "--verbose", is_flag=True, help=T("cli_opt_verbose"))
def main(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        # their routine INFO lines (each migration step, each minute's queue check) drown ours
        for noisy in ("alembic", "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command(help=T("cli_help_serve"))
@click.option("--host", default=None, help=T("cli_opt_host"))
@click.option("--port", default=None, type=int, help=T("cli_opt_port"))
def serve(host: str | None, port: int | None) -> None:
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


@main.command(help=T("cli_help_demo"))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int,
              help=T("cli_opt_demo_port"))
@click.option("--database", type=click.Path(path_type=Path), default=None,
              help=T("cli_opt_demo_db"))
def demo(host: str, port: int, database: Path | None) -> None:
    from bot.demo import run_demo

    try:
        _run(run_demo(host, port, database))
    except KeyboardInterrupt:
        pass


@main.group(help=T("cli_help_db"))
def db() -> None:
    pass


@db.command("upgrade", help=T("cli_help_db_upgrade"))
def db_upgrade() -> None:
    from storage.migrate import upgrade

    settings = Settings()
    upgrade(settings.database_url)
    console.print(default_texts().get("cli_db_upgraded"))


@main.command("import", help=T("cli_help_import"))
@click.argument("kind", type=click.Choice(["stations", "deputies", "duty"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(kind: str, file: Path) -> None:
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


@main.group(help=T("cli_help_deputy"))
def deputy() -> None:
    pass


@deputy.command("bind-code", help=T("cli_help_bind_code"))
@click.argument("deputy_code")
def bind_code(deputy_code: str) -> None:
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


@main.command(help=T("cli_help_outbox"))
@click.option("--all", "show_all", is_flag=True, help=T("cli_opt_outbox_all"))
def outbox(show_all: bool) -> None:
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


@main.group(help=T("cli_help_qrcode"))
def qrcode() -> None:
    pass


@qrcode.command("station", help=T("cli_help_qrcode_station"))
@click.argument("code")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=T("cli_opt_qrcode_out"))
def qrcode_station(code: str, out: Path | None) -> None:
    _save_qrcode("station", code, out)


@qrcode.command("deputy", help=T("cli_help_qrcode_deputy"))
@click.argument("code")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=T("cli_opt_qrcode_out"))
def qrcode_deputy(code: str, out: Path | None) -> None:
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
import bot.console.cli  # noqa: E402,F401  (registers `zhitongche staff`)
