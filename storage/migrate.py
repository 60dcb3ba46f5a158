"""Schema migrations (Alembic, scripts in storage/migrations). No alembic.ini needed anywhere:

    from storage.migrate import upgrade
    upgrade("sqlite+aiosqlite:///var/zhitongche.db")

For the alembic command line: `alembic -c storage/alembic.ini revision --autogenerate -m "..."`."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        # an attribute, not sqlalchemy.url: ConfigParser would choke on % in passwords
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` (sqlite+aiosqlite or postgresql+asyncpg).

    Synchronous; runs its own event loop. Called from inside a running loop, it runs in a helper
    thread (blocking the caller until done) — in the app, `await asyncio.to_thread(upgrade, url)`
    (bot/bootstrap.py) keeps the loop free."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(database_url), revision)
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            command.upgrade(alembic_config(database_url), revision)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=run, name="alembic-upgrade")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]

