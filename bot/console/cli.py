"""`zhitongche staff …`: staff accounts for the console and API tokens. The secret a command
prints is alone on its last line, so scripts can take it with `tail -1`."""
from __future__ import annotations

import asyncio
import sys

import click

from bot.bootstrap import open_storage
from bot.cli import main
from bot.core.staff import StaffError
from bot.core.clock import SystemClock
from bot.settings import Settings
from bot.texts import default_texts

T = default_texts().get


@main.group("staff", help=T("cli_help_staff"))
def staff_group() -> None:
    pass


def _run_with_storage(action):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with open_storage(Settings()) as uow_factory:
            return await action(uow_factory)

    try:
        return asyncio.run(go())
    except StaffError as error:
        click.echo(T(error.key, **error.params), err=True)
        raise SystemExit(1) from None


@staff_group.command("add", help=T("cli_help_staff_add"))
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["district", "town", "station"]), help=T("cli_opt_staff_role"))
@click.option("--town", default="", help=T("cli_opt_staff_town"))
@click.option("--station", default="", help=T("cli_opt_staff_station"))
@click.option("--name", default="", help=T("cli_opt_staff_name"))
@click.option("--password-stdin", is_flag=True, help=T("cli_opt_staff_password_stdin"))
@click.option("--totp", is_flag=True, help=T("cli_opt_staff_totp"))
def staff_add(username: str, role: str, town: str, station: str, name: str, password_stdin: bool,
              totp: bool) -> None:
    from bot.console.auth import create_account

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    account, password = _run_with_storage(lambda uow_factory: create_account(
        uow_factory, SystemClock(), username=username, role=role, town=town, station=station, name=name,
        password=password, totp=totp))
    click.echo(T("cli_staff_added", username=username, role=T(f"console_role_{account.role}"),
                 where=account.station or account.town or T("console_district")))
    if account.totp_secret:
        import pyotp

        click.echo(T("cli_staff_totp", uri=pyotp.TOTP(account.totp_secret).provisioning_uri(
            name=username, issuer_name=T("console_title"))))
    if not password_stdin:
        click.echo(T("cli_staff_password_note"))
        click.echo(password)


@staff_group.command("token", help=T("cli_help_staff_token"))
@click.argument("username")
def staff_token(username: str) -> None:
    from bot.console.auth import issue_token

    token = _run_with_storage(lambda uow_factory: issue_token(uow_factory, SystemClock(), username))
    click.echo(T("cli_staff_token_note", username=username))
    click.echo(token)
