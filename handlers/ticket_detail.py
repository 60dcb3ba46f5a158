"""A deputy reads a whole report in WeChat-sized messages: 「详情 #1003」 shows its first page,
「下一页」 the next (which ticket and page: keys.detail_pages, for PAGING_TTL). Only the deputy the
ticket is assigned to, or one bound at its station, may read it; the phone only for the assigned
deputy and only when the citizen agreed (as in the pushes)."""
from __future__ import annotations

import json

from bot.core import keys
from bot.core.people import Deputy
from bot.core.tickets import Ticket
from bot.texts import Texts

from handlers.services import Services
from handlers.ticket_links import ticket_link

PAGE_MAX_BYTES = 2048  # WeChat's limit for a passive reply or a customer-service text
FOOTER_BYTES = 120  # room left on each page for 「（第 1/3 页…）」
PAGING_TTL = 30 * 60  # seconds: 下一页 works this long after the last page shown


def may_read(deputy: Deputy, ticket: Ticket) -> bool:
    return ticket.deputy_code == deputy.code or ticket.station_code == deputy.station_code


def full_text(texts: Texts, ticket: Ticket, deputy: Deputy, link: str = "", days: int = 7) -> str:
    """Everything the citizen gave: the whole text, attachments (photos, voice recognition, place)."""
    shares = ticket.deputy_code == deputy.code and ticket.share_contact and ticket.phone
    lines = [texts.get("detail_head", number=ticket.number, status=texts.get(f"deputy_status_{ticket.status.value}"),
                       category=ticket.category, place=ticket.place, summary=ticket.summary,
                       created=ticket.created_at.strftime("%Y-%m-%d %H:%M"))]
    lines.append(texts.get("detail_phone", phone=ticket.phone) if shares else texts.get("detail_no_phone"))
    if ticket.details:
        lines.append(texts.get("detail_details", details=ticket.details.strip()))
    for index, attachment in enumerate(ticket.attachments, 1):
        key = f"detail_attachment_{attachment.kind}"
        if key in texts:
            lines.append(texts.get(key, index=index, url=attachment.url or attachment.media_id,
                                   text=attachment.text or texts.get("detail_voice_unrecognised")))
    if link:
        lines.append(texts.get("detail_link", url=link, days=days))
    return "\n".join(lines)


def split_pages(text: str, budget: int = PAGE_MAX_BYTES - FOOTER_BYTES) -> list[str]:
    """Pieces of at most `budget` UTF-8 bytes, cut at a line break where one is near."""
    pages: list[str] = []
    while text:
        size, end = 0, 0
        while end < len(text) and size + len(text[end].encode("utf-8")) <= budget:
            size += len(text[end].encode("utf-8"))
            end += 1
        if end < len(text):
            newline = text.rfind("\n", 0, end)
            if newline > end * 0.6:  # a line break in the last part: cut there
                end = newline + 1
        pages.append(text[:end].strip("\n"))
        text = text[end:]
    return [p for p in pages if p]


def _page(texts: Texts, pages: list[str], index: int) -> str:
    key = "detail_footer_more" if index + 1 < len(pages) else "detail_footer_last"
    return pages[index] + "\n" + texts.get(key, page=index + 1, total=len(pages))


async def _readable(services: Services, deputy: Deputy, number: int) -> Ticket | None:
    async with services.uow() as uow:
        ticket = await uow.tickets.get(number)
    return ticket if ticket is not None and may_read(deputy, ticket) else None


def _pages(services: Services, ticket: Ticket, deputy: Deputy) -> list[str]:
    link = ticket_link(services.settings, ticket.number, deputy.code, services.clock.now())
    return split_pages(full_text(services.texts, ticket, deputy, link, services.settings.ticket_link_days))


async def first_page(services: Services, deputy: Deputy, number: int) -> str:
    ticket = await _readable(services, deputy, number)
    if ticket is None:  # another station's ticket is not found, as with #1003
        return services.texts.get("deputy_ticket_not_found", number=number)
    await services.kv.set(keys.detail_pages(deputy.openid or ""), json.dumps({"number": number, "page": 0}),
                          ttl=PAGING_TTL)
    return _page(services.texts, _pages(services, ticket, deputy), 0)


async def next_page(services: Services, deputy: Deputy) -> str:
    texts, key = services.texts, keys.detail_pages(deputy.openid or "")
    try:
        state = json.loads(await services.kv.get(key) or "null")
        number, page = int(state["number"]), int(state["page"]) + 1
    except (TypeError, ValueError, KeyError):
        return texts.get("detail_no_paging")
    ticket = await _readable(services, deputy, number)
    if ticket is None:
        await services.kv.delete(key)
        return texts.get("deputy_ticket_not_found", number=number)
    pages = _pages(services, ticket, deputy)
    if page >= len(pages):
        await services.kv.delete(key)
        return texts.get("detail_no_more", number=number)
    await services.kv.set(key, json.dumps({"number": number, "page": page}), ttl=PAGING_TTL)
    return _page(texts, pages, page)



