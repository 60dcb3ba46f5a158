"""The last router for a citizen's words: what the NLU read, through a table intent → handler.

- legislative_opinion starts the report form with category 政法: the opinion is filed like any
  report, so a deputy of the citizen's place (or the law station) records it and the citizen
  can follow it with `我的诉求`. The reply first thanks them and says it will be recorded.
- nlu_fallback whose best-ranked real intent is report_issue, on a message with real content,
  starts the form: the confirm step and 取消 make a wrong start harmless, a lost report is not.
- A voice message starts a report (with the voice attached) unless its recognised text is
  clearly something else (greeting, 我的诉求, petition, emergency…).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from dialogues.commands import find_rating
from handlers import citizens
from handlers.chat import report
from handlers.chat.answers import answer_intent, answer_schedule
from handlers.chat.commands import rating_reply
from handlers.chat.router import TEXTS, Context, Router

LEGISLATIVE_CATEGORY = "政法"
FALLBACK_REPORT_MIN_CHARS = 10
# intents that say "not a report" clearly enough to override a voice message's default
VOICE_NOT_REPORT = {
    "greet", "goodbye", "thanks", "check_status", "ask_schedule", "ask_deputy", "ask_scope",
    "petition", "emergency", "rate", "cancel",
}


async def _report(ctx: Context) -> str:
    return await report.start_form(ctx, text=ctx.text, attachment=ctx.attachment)


async def _legislative(ctx: Context) -> str:
    return await report.start_form(ctx, text=ctx.text, category=LEGISLATIVE_CATEGORY,
                                   intro="form_legislative_intro")


async def _not_understood(ctx: Context) -> str:
    parse = await ctx.parse()
    if parse.best_real_intent() == "report_issue" and (
        len(ctx.text) >= FALLBACK_REPORT_MIN_CHARS and ctx.words.has_content(ctx.text)
    ):
        return await report.start_form(ctx, text=ctx.text)
    return await answer_intent(ctx, parse.intent)


async def _rate(ctx: Context) -> str:
    score = find_rating(ctx.text, ctx.words)
    if score is not None:
        return await rating_reply(ctx, score, ctx.text) or ctx.texts.get("citizen_rate_nothing")
    if await citizens.awaiting_rating(ctx.services, ctx.openid):
        return ctx.texts.get("citizen_rate_ask_again")
    return ctx.texts.get("citizen_rate_nothing")


async def _nothing_to_cancel(ctx: Context) -> str:
    return ctx.texts.get("citizen_nothing_to_cancel")


INTENTS: dict[str, Callable[[Context], Awaitable[str]]] = {
    "report_issue": _report,
    "legislative_opinion": _legislative,
    "nlu_fallback": _not_understood,
    "rate": _rate,
    "cancel": _nothing_to_cancel,
    "ask_schedule": answer_schedule,
}


async def _handle(ctx: Context) -> str:
    intent = (await ctx.parse()).intent
    if ctx.kind == "voice" and intent not in VOICE_NOT_REPORT:
        return await _report(ctx)
    handler = INTENTS.get(intent)
    if handler is not None:
        return await handler(ctx)
    return await answer_intent(ctx, intent)  # the intents that need no form


router = Router("intents", _handle, kinds=TEXTS)
