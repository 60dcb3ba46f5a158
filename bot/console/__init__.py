"""The staff console (/console/) and the JSON API (/api/v1/): a second entry point beside WeChat."""
from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from bot.core.clock import Clock
from bot.core.ports import UnitOfWorkFactory
from bot.settings import Settings
from bot.texts import Texts
from handlers.services import Services


def add_console_routes(app: web.Application, *, uow_factory: UnitOfWorkFactory, engine: object, clock: Clock,
                       settings: Settings, texts: Texts, services: Services | None = None,
                       send_broadcast: Callable[[int], None] | None = None) -> None:
    """Mounts both on the bot's web application. `engine` is the SQL engine the read side queries;
    `services` are the use cases the actions call (on the same unit of work; built here over
    `uow_factory` when not given); `send_broadcast(id)` starts sending a stored broadcast in the
    background (without it the send_broadcasts job does)."""
    from bot.console.api import create_api_app
    from bot.console.common import ConsoleDeps
    from bot.console.web import create_console_app
    from storage.console_queries import ConsoleQueries

    queries = ConsoleQueries(engine, late_hours=settings.console_late_hours,  # type: ignore[arg-type]
                             resolve_days=settings.console_resolve_days)
    if services is None:
        from bot.bootstrap import build_services
        from storage.kv import MemoryKeyValueStore

        services = build_services(settings, uow=uow_factory, kv=MemoryKeyValueStore(), nlu=None,  # type: ignore[arg-type]
                                  clock=clock, texts=texts)
    deps = ConsoleDeps(uow_factory=uow_factory, queries=queries, clock=clock, texts=texts, settings=settings,
                       services=services, send_broadcast=send_broadcast)
    app.add_subapp("/console", create_console_app(deps))
    app.add_subapp("/api/v1", create_api_app(deps))
