"""The deputy's read-only page of one ticket: GET /t/<number>?d=<deputy>&e=<expiry>&s=<signature>.

Linked from the deputy's notices and from 详情 #n (handlers/ticket_links.py signs the links).
Shows the whole text, photos, voice recognition text, the timeline, and the citizen's phone only
where the citizen agreed and the link's deputy is the one the ticket is assigned to. A forged
link answers 403, an expired one 410, each with a plain Chinese page; a deputy who may no longer
see the ticket (it went to another station) gets 403 too."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bot.core.clock import Clock
from bot.core.tickets import CITIZEN, SYSTEM, Ticket, TimelineKind
from bot.settings import Settings
from bot.texts import Texts
from handlers.ticket_detail import may_read
from handlers.ticket_links import Check, check

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
_jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                            autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
# the URL holds the signature: never cached, never passed on as a referrer, never indexed
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def add_ticket_page_routes(app: web.Application, *, uow_factory: Callable[[], Any], settings: Settings,
                           clock: Clock, texts: Texts) -> None:
    async def page(request: web.Request) -> web.Response:
        try:
            number = int(request.match_info["number"])
        except ValueError:
            return _error(texts, 403, "page_forged")
        q = request.query
        deputy_code = q.get("d", "")
        verdict = check(settings, number, deputy_code, q.get("e", ""), q.get("s", ""), clock.now())
        if verdict is Check.FORGED:
            log.info("ticket page #%s: a link that is not ours", number)
            return _error(texts, 403, "page_forged")
        if verdict is Check.EXPIRED:
            return _error(texts, 410, "page_expired", number=number)
        async with uow_factory() as uow:
            ticket = await uow.tickets.get(number)
            deputy = await uow.deputies.get(deputy_code)
            names = {d.code: d.name for d in await uow.deputies.list()}
        if ticket is None or deputy is None or not may_read(deputy, ticket):
            return _error(texts, 403, "page_not_yours", number=number)
        html = _jinja.get_template("ticket.html").render(t=_view(texts, ticket, deputy.code, names), texts=texts)
        return web.Response(text=html, content_type="text/html", headers=HEADERS)

    app.router.add_get(r"/t/{number}", page)


def _error(texts: Texts, status: int, key: str, **params: object) -> web.Response:
    html = _jinja.get_template("error.html").render(
        title=texts.get(f"{key}_title"), message=texts.get(key, **params), texts=texts)
    return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)


def _view(texts: Texts, ticket: Ticket, deputy_code: str, names: dict[str, str]) -> dict[str, Any]:
    def who(code: str) -> str:
        if code == CITIZEN:
            return texts.get("page_who_citizen")
        if code in ("", SYSTEM):
            return texts.get("page_who_system")
        return texts.get("page_who_deputy", name=names.get(code, code))

    events = texts.raw("page_event")
    timeline = []
    for entry in ticket.timeline:
        if entry.kind not in events:
            continue
        # assigned: the actor is the deputy it went to (said by the system); transferred: text is the new one
        assigned = entry.kind is TimelineKind.ASSIGNED
        target = who(entry.actor) if assigned else who(entry.text) if entry.kind is TimelineKind.TRANSFERRED else ""
        timeline.append({"when": f"{entry.at:%m-%d %H:%M}", "who": who(SYSTEM) if assigned else who(entry.actor),
                         "what": str(events[entry.kind]).format(text=entry.text, target=target)})
    shares = ticket.deputy_code == deputy_code and ticket.share_contact and bool(ticket.phone)
    return {
        "number": ticket.number, "status": texts.get(f"deputy_status_{ticket.status.value}"),
        "category": ticket.category, "place": ticket.place, "summary": ticket.summary,
        "details": ticket.details, "created": f"{ticket.created_at:%Y-%m-%d %H:%M}",
        "phone": ticket.phone if shares else "",
        "photos": [a.url for a in ticket.attachments if a.kind == "image" and a.url],
        "voices": [a.text for a in ticket.attachments if a.kind == "voice"],
        "places": [a.text for a in ticket.attachments if a.kind == "location" and a.text],
        "timeline": timeline,
    }
