"""The `zhitongche` command line. Messages for staff are in Chinese; they come from config/texts."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console

from bot import cli_i18n
from bot.settings import PROJECT_ROOT, Settings
from bot.texts import default_texts

R = TypeVar("R")
console = Console()
T = default_texts().get  # command help is shown to staff: Chinese, from config/texts/cli.yaml
cli_i18n.install(default_texts())  # click's own messages too; before the commands are declared


def _run(coro: Awaitable[R]) -> R:
    return asyncio.run(coro)  # type: ignore[arg-type]


@click.group(help=T("cli_help_main"))
@click.option("-v", "--verbose", is_flag=True, help=T("cli_opt_verbose"))
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    from bot.cli_output import configure_logging

    configure_logging(verbose, ctx.invoked_subcommand)


@main.command(help=T("cli_help_serve"))
@click.option("--host", default=None, help=T("cli_opt_host"))
@click.option("--port", default=None, type=int, help=T("cli_opt_port"))
def serve(host: str | None, port: int | None) -> None:
    from aiohttp import web

    from bot.bootstrap import BotApp, PathOnlyAccessLogger

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
    from bot.bootstrap import open_storage
    from storage.importer import import_file

    async def go():
        async with open_storage(Settings()) as uow_factory:
            return await import_file(uow_factory, kind, file)

    _print_import(_run(go()), file, kind)


def _print_import(report, file: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    from bot.cli_output import import_problems_table

    texts = default_texts()
    console.print(texts.get("cli_import_summary", file=file.name, read=report.rows_read,
                            created=report.created, updated=report.updated,
                            unchanged=report.unchanged, errors=len(report.errors)))
    if kind == "stations" and (report.created or report.updated):
        console.print(texts.get("cli_import_places_hint"))
    if report.errors:
        console.print(import_problems_table(report.errors, texts))
        raise SystemExit(1)


@main.group(help=T("cli_help_reception"))
def reception() -> None:
    pass


@reception.command("import", help=T("cli_help_reception_import"))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def reception_import(file: Path) -> None:
    from bot.bootstrap import open_storage
    from storage.importer import import_file

    async def go():
        async with open_storage(Settings()) as uow_factory:
            return await import_file(uow_factory, "receptions", file)

    _print_import(_run(go()), file, "receptions")


@reception.command("list", help=T("cli_help_reception_list"))
@click.option("--station", default=None, help=T("cli_opt_reception_station"))
@click.option("--town", default=None, help=T("cli_opt_reception_town"))
@click.option("--all", "show_all", is_flag=True, help=T("cli_opt_reception_all"))
def reception_list(station: str | None, town: str | None, show_all: bool) -> None:
    from datetime import date

    from bot.bootstrap import command_services
    from bot.cli_output import receptions_table
    from handlers.receptions import list_receptions

    texts = default_texts()

    async def go():
        async with command_services(Settings()) as services:
            found = await list_receptions(services, station=station, town=town,
                                          first=date.min if show_all else None)
            async with services.uow() as uow:
                return found, await uow.deputies.list()

    found, deputies = _run(go())
    if not found:
        console.print(texts.get("cli_receptions_empty"))
        return
    console.print(receptions_table(found, deputies, texts))


@main.group(help=T("cli_help_deputy"))
def deputy() -> None:
    pass


@deputy.command("bind-code", help=T("cli_help_bind_code"))
@click.argument("deputy_code")
def bind_code(deputy_code: str) -> None:
    from bot.bootstrap import command_services
    from bot.cli_output import database_label
    from bot.core.errors import DomainError
    from handlers.deputies import create_bind_code

    texts = default_texts()
    settings = Settings()

    async def go() -> str:
        async with command_services(settings) as services:
            return await create_bind_code(services, deputy_code)

    try:
        code = _run(go())
    except DomainError as error:
        console.print(texts.get(error.key, **error.params))
        console.print(texts.get("cli_database_in_use", database=database_label(settings.database_url)))
        raise SystemExit(1) from None
    console.print(texts.get("cli_bind_code", deputy=deputy_code, code=code))


@main.command(help=T("cli_help_outbox"))
@click.option("--all", "show_all", is_flag=True, help=T("cli_opt_outbox_all"))
def outbox(show_all: bool) -> None:
    from bot.bootstrap import open_storage
    from bot.cli_output import outbox_table
    from bot.core.outbound import UNDELIVERED, OutboxStatus

    texts = default_texts()
    # dropped pushes too: staff see which held notice was not delivered stale, and why
    statuses = (*UNDELIVERED, OutboxStatus.DROPPED, *((OutboxStatus.SENT,) if show_all else ()))

    async def go():
        async with open_storage(Settings()) as uow_factory:
            async with uow_factory() as uow:
                return await uow.outbox.list(statuses), await uow.deputies.list()

    messages, deputies = _run(go())
    if not messages:
        console.print(texts.get("cli_outbox_empty"))
        return
    console.print(outbox_table(messages, deputies, texts))


@main.group(help=T("cli_help_qrcode"))
def qrcode() -> None:
    pass


def _poster_options(command: Callable) -> Callable:
    command = click.option("--paper", type=click.Choice(["A5", "A4"], case_sensitive=False), default="A5",
                           show_default=True, help=T("cli_opt_qrcode_paper"))(command)
    return click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        help=T("cli_opt_qrcode_out"))(command)


@qrcode.command("station", help=T("cli_help_qrcode_station"))
@click.argument("code")
@_poster_options
def qrcode_station(code: str, out: Path | None, paper: str) -> None:
    _save_qrcode("station", code, out, paper.upper())


@qrcode.command("deputy", help=T("cli_help_qrcode_deputy"))
@click.argument("code")
@_poster_options
def qrcode_deputy(code: str, out: Path | None, paper: str) -> None:
    _save_qrcode("deputy", code, out, paper.upper())


def _save_qrcode(kind: str, code: str, out: Path | None, paper: str) -> None:
    from bot import posters
    from bot.bootstrap import open_gateway, open_storage
    from bot.cli_output import wechat_error
    from bot.core.ports import WeChatAPIError

    texts = default_texts()
    settings = Settings()
    out = out or PROJECT_ROOT / "var" / f"qrcode-{kind}-{code}.png"

    async def go() -> bytes:
        async with open_storage(settings) as uow_factory:
            async with uow_factory() as uow:
                if kind == "station":
                    station = await uow.stations.get(code)
                    text = posters.station_text(station, texts) if station else None
                elif deputy := await uow.deputies.get(code):
                    text = posters.deputy_text(deputy, await uow.stations.get(deputy.station_code), texts)
                else:
                    text = None
                if text is None:
                    raise click.ClickException(texts.get(f"cli_unknown_{kind}", code=code))
        async with open_gateway(settings) as gateway:
            try:
                qr = await gateway.create_qrcode(f"{kind}:{code}")
            except WeChatAPIError as error:
                raise click.ClickException(texts.get("cli_qrcode_failed", reason=wechat_error(error.errcode, texts))) from None
        try:
            return await asyncio.to_thread(posters.render, qr, text, texts, paper=paper,
                                           font_path=Path(settings.poster_font))
        except posters.PosterError as error:
            raise click.ClickException(str(error)) from None

    png = _run(go())
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(png)
    except OSError as error:
        raise click.ClickException(texts.get("cli_save_failed", path=out, reason=error.strerror)) from None
    console.print(texts.get("cli_qrcode_saved", path=out, paper=paper))


def _attach_nlu() -> None:
    from nlu import data as nd
    from nlu.cli import nlu_group

    @nlu_group.command("places", help=T("cli_help_nlu_places"))
    @click.option("--lookup", type=click.Path(dir_okay=False, path_type=Path), default=nd.PLACES_FILE,
                  show_default=True, help=T("cli_opt_places_lookup"))
    @click.option("--jieba-dir", type=click.Path(file_okay=False, path_type=Path), default=nd.JIEBA_DICT_DIR,
                  show_default=True, help=T("cli_opt_places_jieba"))
    def nlu_places(lookup: Path, jieba_dir: Path) -> None:
        """The Rasa lookup table and jieba dictionary from the stations table (what the embedded
        engine learns at run time), so both engines know the same places."""
        from bot.bootstrap import open_storage

        async def go() -> list[tuple[str, tuple[str, ...]]]:
            async with open_storage(Settings()) as uow_factory:
                async with uow_factory() as uow:
                    return [(s.town, s.places) for s in await uow.stations.list()]

        stations = _run(go())
        table = nd.place_table(stations)
        nd.write_place_files(table, lookup, jieba_dir, source="`zhitongche nlu places` from the stations table")
        console.print(default_texts().get("cli_nlu_places_written", stations=len(stations),
                                          names=len(table.canonical), synonyms=len(table.synonyms), path=lookup))

    main.add_command(nlu_group, "nlu")


_attach_nlu()
import bot.console.cli  # noqa: E402,F401  (registers `zhitongche staff`)
cli_i18n.localise(main, default_texts())
