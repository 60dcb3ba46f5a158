"""The report form as a scene: a photo, voice, location or the menu's 我要反映 starts it (and the
intent table does, for a report in words); while it is open every message answers or attaches.

Decisions worth knowing:
- Mid-form, an emergency always wins (safety first); `我的诉求`, `#1024` and `帮助` are answered
  with a reminder of the open question; other intents (greeting, petition, schedule…) are only
  taken as a digression when the text is not a valid answer to the current question, so a
  free-text answer ("details") is never lost to the classifier. At the summary (请核对) there are
  no digressions: anything but 是/修改/取消 gets the same one-line instruction.
- The reply to 是 says where the ticket went (the on-duty deputy, or the station queue); it is
  the citizen's only message about the filing.
- An answer after the form expired gets `form_expired` once (the dispatcher does that for every
  scene); nothing is filed.
"""
from __future__ import annotations

import logging

from bot.core.privacy import mask_openid
from bot.core.tickets import Attachment
from dialogues import report_form as rf
from dialogues.report_form import ReportForm
from handlers import citizens, tickets
from handlers.chat.answers import answer_intent
from handlers.chat.commands import command_reply
from handlers.chat.router import MESSAGES, Context, Router, Scene
from handlers.services import ReportDraft

log = logging.getLogger(__name__)

NAME = "report"
EMERGENCY_MIN_CONFIDENCE = 0.5  # mid-form, an emergency must be reasonably sure to interrupt
# a new report that might also be an emergency starts with the hotlines. Intent CV on the training
# examples: at 0.1 the line catches 9 of the 18 emergencies read as report_issue, and shows on 1.7 %
# of real reports (0.2: 7 of 18, same 1.7 %)
EMERGENCY_HINT_MIN = 0.1
DIGRESSION_MIN_CONFIDENCE = 0.6
# intents answered mid-form when the text does not answer the question
DIGRESSIONS = {
    "greet", "goodbye", "thanks", "check_status", "ask_schedule", "ask_deputy", "ask_scope",
    "petition", "out_of_scope",
}


def _form(ctx: Context) -> ReportForm:
    assert ctx.state is not None
    return ReportForm.from_data(ctx.state.data)


async def start_form(ctx: Context, *, text: str = "", attachment: Attachment | None = None,
                     category: str | None = None, intro: str = "") -> str:
    """A new report form, pre-filled from this message (its text's parse, its attachment)."""
    parse = await ctx.parse() if text else None
    station = await citizens.bound_station(ctx.services, ctx.openid)
    form = rf.start_form(
        ctx.openid,
        ctx.words,
        text=text,
        parse=parse,
        category=category,
        station=station,
        attachment=attachment,
        started_at=ctx.services.clock.now().isoformat(timespec="seconds"),
    )
    await ctx.enter(NAME, form.to_data())
    log.info("report form started by %s", mask_openid(ctx.openid))
    lines = []
    if parse is not None and parse.confidence_of("emergency") >= EMERGENCY_HINT_MIN:
        lines.append(ctx.texts.get("form_emergency_hint"))
    if intro:
        lines.append(ctx.texts.get(intro))
    lines.append(ctx.texts.get("form_started"))
    if attachment is not None and not (attachment.kind == "voice" and form.summary):
        note = rf.attachment_note(form, attachment)
        lines.append(ctx.texts.get(note.note, **note.params))
    lines.append(rf.prompt(form, ctx.texts))
    return "\n".join(lines)


async def _start(ctx: Context) -> str:
    """Outside a form: a photo, voice or location starts a report with it; so does the menu."""
    return await start_form(ctx, attachment=ctx.attachment)


async def _in_form(ctx: Context) -> str:
    form = _form(ctx)
    if ctx.kind == "click:report":
        return rf.reminder(form, ctx.texts)
    if ctx.kind == "attachment":
        outcome = rf.attach(form, ctx.attachment)
        await ctx.save(form.to_data())
        return rf.render(outcome, form, ctx.texts)
    if ctx.kind == "other":
        return ctx.texts.get("form_unsupported_kind") + "\n" + rf.prompt(form, ctx.texts)
    return await _answer(ctx, form)


async def _answer(ctx: Context, form: ReportForm) -> str:
    text = ctx.text
    if ctx.words.is_cancel(text):
        return await _cancel(ctx)
    if ctx.kind == "voice":
        rf.attach(form, ctx.attachment)
    else:
        command = await command_reply(ctx, text)
        if command is not None:
            return _with_reminder(command, form, ctx)
    parse = await ctx.parse()
    if parse.intent == "emergency" and parse.confidence >= EMERGENCY_MIN_CONFIDENCE:
        await ctx.save(form.to_data())  # keep an attached voice
        return _with_reminder(ctx.texts.get("citizen_emergency"), form, ctx)
    at_confirm = form.step == "confirm"  # there, anything but 是/修改/取消 gets the short instruction
    outcome = rf.answer(form, text, ctx.words, parse)
    if not outcome.valid and not at_confirm and parse.intent in DIGRESSIONS and (
        parse.confidence >= DIGRESSION_MIN_CONFIDENCE
    ):
        await ctx.save(form.to_data())
        return _with_reminder(await answer_intent(ctx, parse.intent), form, ctx)
    if outcome.action == "cancel":
        return await _cancel(ctx)
    if outcome.action == "submit":
        return await _submit(ctx, form)
    await ctx.save(form.to_data())
    return rf.render(outcome, form, ctx.texts)


def _with_reminder(reply: str, form: ReportForm, ctx: Context) -> str:
    return reply + "\n\n" + rf.reminder(form, ctx.texts)


async def _cancel(ctx: Context) -> str:
    await ctx.leave()
    log.info("report form cancelled by %s", mask_openid(ctx.openid))
    return ctx.texts.get("form_cancelled")


async def _submit(ctx: Context, form: ReportForm) -> str:
    draft = ReportDraft(
        citizen_openid=form.openid,
        category=form.category,
        summary=form.summary,
        place=form.place,
        place_names=tuple(form.place_names),
        details=form.details,
        town=form.town,
        qr_station_code=form.qr_station_code,
        attachments=form.attachment_objects(),
        phone=form.phone,
        share_contact=bool(form.phone) and form.share_contact,
    )
    try:
        # a form whose ticket was filed but not cleared (the store failed) is not filed twice
        filed = await tickets.file_form(ctx.services, draft, form.started_at)
    except Exception:  # noqa: BLE001 - keep the form so "是" can be sent again
        log.exception("submitting the report of %s failed", mask_openid(form.openid))
        await ctx.save(form.to_data())
        return ctx.texts.get("form_submit_failed")
    # the ticket is committed: from here on the citizen is told so, whatever else fails
    try:
        await ctx.leave()
    except Exception:  # noqa: BLE001
        log.exception("ticket #%d of %s is filed, but its form could not be cleared",
                      filed.ticket.number, mask_openid(form.openid))
    return await citizens.filed_text(ctx.services, filed)


def _looks_like_answer(ctx: Context) -> bool:
    w, text = ctx.words, ctx.text
    return any(check(text) for check in (w.is_yes, w.is_no, w.is_cancel, w.is_skip, w.is_edit, w.is_no_details)) or (
        rf.normalize_phone(text) is not None
    )


scene = Scene(
    NAME,
    _in_form,
    kinds=MESSAGES | {"click:report"},
    ttl=lambda services: services.settings.form_ttl,
    reminder=lambda ctx: rf.reminder(_form(ctx), ctx.texts),
    start=Router("report-start", _start, kinds=frozenset({"attachment", "click:report"})),
    expired_text="form_expired",
    lost_text="form_lost",
    is_answer=_looks_like_answer,
)
