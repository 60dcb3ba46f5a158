"""A bound deputy pages through a whole report: 「详情 #1003」, then 「下一页」 (handlers/ticket_detail.py)."""
from __future__ import annotations

import re

from dialogues.words import fold_width
from handlers import ticket_detail
from handlers.chat.router import Context, Router
from handlers.deputies import bound_deputy

_DETAIL = re.compile(r"(?:详情|全文)\s*(?:#|编号)?\s*#?\s*(\d{1,9})")
_NEXT = frozenset({"下一页", "下页", "下一頁", "继续"})


async def _handle(ctx: Context) -> str | None:
    body = fold_width(ctx.text).strip()
    detail = _DETAIL.fullmatch(body)
    if detail is None and "".join(body.split()) not in _NEXT:
        return None
    deputy = await bound_deputy(ctx.services, ctx.openid)
    if deputy is None:
        return None  # a citizen's words: the rest of the chat answers them
    if detail is not None:
        return await ticket_detail.first_page(ctx.services, deputy, int(detail.group(1)))
    return await ticket_detail.next_page(ctx.services, deputy)


router = Router("detail", _handle, kinds=frozenset({"text"}))
