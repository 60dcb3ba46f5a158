"""A citizen's exact commands, never through the classifier: a rating of a resolved ticket,
`我的诉求`, `#1024` (its timeline), `#1024 <text>` (a note for its deputy), `帮助`; and the menu's
我的诉求 / 帮助 buttons."""
from __future__ import annotations

from dialogues.commands import parse_rating, ticket_note, ticket_number
from handlers import citizens
from handlers.chat.router import Context, Router


async def command_reply(ctx: Context, text: str) -> str | None:
    """`我的诉求`, `#1024`, `#1024 <text>`, `帮助` (also answered mid-scene)."""
    if ctx.words.is_my_tickets(text):
        return await citizens.my_tickets_text(ctx.services, ctx.openid)
    number = ticket_number(text)
    if number is not None:
        return await citizens.ticket_timeline_text(ctx.services, ctx.openid, number)
    note = ticket_note(text)
    if note is not None:
        return await citizens.add_citizen_note(ctx.services, ctx.openid, *note)
    if ctx.words.is_help(text):
        return ctx.texts.get("citizen_help")
    return None


async def rating_reply(ctx: Context, score: int, comment: str) -> str | None:
    """The score for the resolved ticket waiting for one; after it was given, 已收到您的评价;
    None when the citizen has nothing rated or to rate."""
    if await citizens.awaiting_rating(ctx.services, ctx.openid):
        return await citizens.rate_ticket(ctx.services, ctx.openid, score, comment)
    rated = await citizens.already_rated(ctx.services, ctx.openid)
    if rated is not None:
        return ctx.texts.get("citizen_rate_already", number=rated.number, score=rated.rating)
    return None


async def _handle(ctx: Context) -> str | None:
    if ctx.kind == "click:my_tickets":
        return await citizens.my_tickets_text(ctx.services, ctx.openid)
    if ctx.kind == "click:help" or not ctx.text:
        return ctx.texts.get("citizen_help")
    rating = parse_rating(ctx.text, ctx.words) if ctx.kind == "text" else None
    if rating is not None:
        reply = await rating_reply(ctx, *rating)
        if reply is not None:
            return reply
    return await command_reply(ctx, ctx.text)


router = Router("citizen-commands", _handle, kinds=frozenset({"text", "voice", "click:my_tickets", "click:help"}))
