"""Replies that need no scene: to an intent (also given mid-scene, as a digression) and to a
message kind the bot cannot take."""
from __future__ import annotations

from bot.core.parse import ParseResult
from handlers import citizens, receptions
from handlers.chat.router import Context, Router

# intents whose answer is always the same text
FIXED_REPLIES = {
    "petition": "citizen_petition", "emergency": "citizen_emergency",
    "out_of_scope": "citizen_out_of_scope", "thanks": "citizen_thanks_reply", "goodbye": "citizen_goodbye",
}


def _ticket_number(parse: ParseResult) -> int | None:
    for entity in parse.entities_of("ticket"):
        digits = "".join(ch for ch in entity.value if ch.isdigit())
        if digits:
            return int(digits[:9])
    return None


async def answer_schedule(ctx: Context) -> str:
    """The real upcoming receptions for 这周哪个代表接待 / 盛泽镇哪天有接待 / 王代表什么时候在."""
    places = [e.value for e in (await ctx.parse()).entities_of("place")]
    return await receptions.answer_schedule(ctx.services, ctx.openid, ctx.text, places)


async def answer_intent(ctx: Context, intent: str) -> str:
    if intent == "check_status":
        number = _ticket_number(await ctx.parse())
        if number is not None:
            return await citizens.ticket_timeline_text(ctx.services, ctx.openid, number)
        return await citizens.my_tickets_text(ctx.services, ctx.openid)
    if intent == "ask_schedule":  # also a digression in the report form
        return await answer_schedule(ctx)
    if intent == "ask_deputy":
        station = await citizens.bound_station(ctx.services, ctx.openid)
        if station:
            return ctx.texts.get("citizen_ask_deputy_station", station=station.name)
        return ctx.texts.get("citizen_ask_deputy")
    # greet, ask_scope, nlu_fallback, affirm, deny and anything new: what you can do here
    return ctx.texts.get(FIXED_REPLIES.get(intent, "citizen_help"))


async def _unsupported(ctx: Context) -> str:
    return ctx.texts.get("citizen_unsupported_kind")


unsupported = Router("unsupported-kind", _unsupported, kinds=frozenset({"other"}))
