"""送不到的消息: pushes that failed for good or can reach nobody (push_failures, handlers/failures.py),
for the stations the account sees, so staff follow up by phone instead of the ticket waiting."""
from __future__ import annotations

from aiohttp import web

from bot.cli_output import outbox_reason, recipient
from bot.console.common import visible_stations
from bot.console.web import _account, _deps, _page
from bot.core.outbound import unbound_recipient
from bot.core.staff import StaffRole


def add_failure_routes(app: web.Application) -> None:
    app.router.add_get("/failures", failures_page, name="failures")


async def failures_page(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    account = _account(request)
    async with deps.uow_factory() as uow:
        stations = {s.code: s.name for s in await visible_stations(uow, account.scope)}
        if account.role is StaffRole.DISTRICT:
            stations[""] = ""  # pushes about no ticket: the district's to follow up
        failures = [f for f in await uow.outbox.failures() if f.station_code in stations]
        deputies = {d.openid or unbound_recipient(d.code): d for d in await uow.deputies.list()}
    texts = deps.texts
    rows = [(f, stations[f.station_code], recipient(f.recipient_openid, deputies, texts),
             outbox_reason(f.error, texts)) for f in failures]
    return _page(request, "failures.html", rows=rows)
