"""The citizen conversation: one inbound WeChat message in, the passive reply text out.

Everything for one user runs under that user's lock (`lock:user:<openid>`) before any state is
loaded, so two quick messages never race on the same form. Order of handling:

events   subscribe (bind the QR station, welcome) · SCAN (bind, confirm) · unsubscribe (mark) ·
         CLICK report/my_tickets/help (same as the commands) · anything else: no reply.
messages the messaging window opens and held pushes flow (delivery.record_inbound);
         then `绑定 <code>` → deputy binding; a bound deputy's commands; an open report form;
         a rating of a resolved ticket; `我的诉求`, `#1024` (timeline), `#1024 <text>` (a note
         passed to that ticket's deputy), `帮助`; the NLU intent.

Decisions worth knowing:
- legislative_opinion starts the report form with category 政法: the opinion is filed like any
  report, so a deputy of the citizen's place (or the law station) records it and the citizen
  can follow it with `我的诉求`. The reply first thanks them and says it will be recorded.
- Mid-form, an emergency always wins (safety first); `我的诉求`, `#1024` and `帮助` are answered
  with a reminder of the open question; other intents (greeting, petition, schedule…) are only
  taken as a digression when the text is not a valid answer to the current question, so a
  free-text answer ("details") is never lost to the classifier.
- nlu_fallback whose best-ranked real intent is report_issue, on a message with real content,
  starts the form: the confirm step and 取消 make a wrong start harmless, a lost report is not.
- A voice message outside a form starts a report (with the voice attached) unless its
  recognised text is clearly something else (greeting, 我的诉求, petition, emergency…).
"""
from __future__ import annotations

import logging

from bot.core.parse import ParseResult
from bot.domain import Attachment, mask_openid
from bot.messages import Inbound
from dialogues import report_form as rf
from dialogues.commands import find_rating, parse_rating, ticket_note, ticket_number
from dialogues.report_form import ReportForm
from dialogues.words import Words
from handlers import citizens, delivery, deputies, tickets
from handlers.services import ReportDraft, Services

log = logging.getLogger(__name__)

LEGISLATIVE_CATEGORY = "政法"
EMERGENCY_MIN_CONFIDENCE = 0.5  # mid-form, an emergency must be reasonably sure to interrupt
# a new report that might also be an emergency starts with the hotlines. Intent CV on the training
# examples: at 0.1 the line catches 9 of the 18 emergencies read as report_issue, and shows on 1.7 %
# of real reports (0.2: 7 of 18, same 1.7 %)
EMERGENCY_HINT_MIN = 0.1
DIGRESSION_MIN_CONFIDENCE = 0.6
FALLBACK_REPORT_MIN_CHARS = 10
MENU_KEYS = {"report", "my_tickets", "help"}

# intents that say "not a report" clearly enough to override a voice message's default
_VOICE_NOT_REPORT = {
    "greet", "goodbye", "thanks", "check_status", "ask_schedule", "ask_deputy", "ask_scope",
    "petition", "emergency", "rate", "cancel",
}
# intents whose answer is always the same text
_FIXED_REPLIES = {
    "petition": "citizen_petition", "emergency": "citizen_emergency", "ask_schedule": "citizen_schedule",
    "out_of_scope": "citizen_out_of_scope", "thanks": "citizen_thanks_reply", "goodbye": "citizen_goodbye",
}
# intents answered mid-form when the text does not answer the question
_DIGRESSIONS = {
    "greet", "goodbye", "thanks", "check_status", "ask_schedule", "ask_deputy", "ask_scope",
    "petition", "out_of_scope",
}


def form_key(openid: str) -> str:
    return f"form:{openid}"


def started_key(openid: str) -> str:
    """Outlives the form, so an answer arriving after expiry gets "that form expired", not help."""
    return f"form-started:{openid}"


STARTED_TTL = 24 * 3600


def _ticket_entity(parse: ParseResult) -> int | None:
    entity = parse.entity("ticket")
    digits = "".join(ch for ch in entity.value if ch.isdigit()) if entity else ""
    return int(digits[:9]) if digits else None


class Conversation:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.texts = services.texts
        self.words = Words.from_texts(services.texts)

    async def handle(self, inbound: Inbound) -> str | None:
        if not inbound.openid:
            return None
        async with self.services.kv.lock(f"lock:user:{inbound.openid}"):
            if inbound.kind == "event":
                return await self._event(inbound)
            await self._open_window(inbound.openid)
            return await self._message(inbound)

    # --- events ----------------------------------------------------------------------------------
    async def _event(self, inbound: Inbound) -> str | None:
        openid, event = inbound.openid, inbound.event.lower()
        if event == "unsubscribe":
            await citizens.mark_unsubscribed(self.services, openid)
            await self._end_form(openid)
            return None
        if event == "subscribe":
            await self._open_window(openid, event)
            station = await citizens.bind_station_by_scene(self.services, openid, inbound.scene)
            welcome = self.texts.get("citizen_welcome")
            if station:
                welcome += "\n" + self.texts.get("citizen_welcome_station", station=station.name)
            return welcome
        if event == "scan":
            await self._open_window(openid, event)
            station = await citizens.bind_station_by_scene(self.services, openid, inbound.scene)
            if station:
                return self.texts.get("citizen_scan_bound", station=station.name)
            return self.texts.get("citizen_scan_unknown")
        if event == "click" and inbound.event_key in MENU_KEYS:
            await self._open_window(openid, event)
            form = await self._load_form(openid)
            if inbound.event_key == "report":
                if form is not None:
                    return rf.reminder(form, self.texts)
                return await self._start_form(openid)
            reply = (
                await citizens.my_tickets_text(self.services, openid)
                if inbound.event_key == "my_tickets"
                else self.texts.get("citizen_help")
            )
            return self._with_reminder(reply, form)
        return None

    async def _open_window(self, openid: str, event: str = "") -> None:
        """The citizen wrote (or followed/scanned/clicked): WeChat's window opens, held pushes go.
        A failure here must not cost the citizen their answer; it is logged loudly."""
        try:
            await delivery.record_inbound(self.services, openid, event=event)  # releases held ones too
        except Exception:  # noqa: BLE001 - bookkeeping must not swallow the reply
            log.exception("messaging window update failed for %s", mask_openid(openid))

    # --- messages --------------------------------------------------------------------------------
    async def _message(self, inbound: Inbound) -> str | None:
        openid = inbound.openid
        if inbound.kind == "text":
            return await self._text(openid, inbound.text)
        if inbound.kind == "image":
            return await self._attachment(openid, Attachment("image", media_id=inbound.media_id, url=inbound.pic_url))
        if inbound.kind == "voice":
            voice = Attachment("voice", media_id=inbound.media_id, text=inbound.text)
            if inbound.text.strip():
                return await self._text(openid, inbound.text, voice=voice)
            return await self._attachment(openid, voice)
        if inbound.kind == "location":
            label = inbound.label.strip() or f"{inbound.latitude},{inbound.longitude}"
            return await self._attachment(openid, Attachment("location", text=label))
        form = await self._load_form(openid)
        if form is not None:
            return self.texts.get("form_unsupported_kind") + "\n" + rf.prompt(form, self.texts)
        return self.texts.get("citizen_unsupported_kind")

    async def _attachment(self, openid: str, attachment: Attachment) -> str:
        """A photo, voice or location: kept with the open form, or the start of a new report."""
        form = await self._load_form(openid)
        if form is None:
            return await self._start_form(openid, attachment=attachment)
        outcome = rf.attach(form, attachment)
        await self._save_form(form)
        return rf.render(outcome, form, self.texts)

    async def _text(self, openid: str, text: str, *, voice: Attachment | None = None) -> str | None:
        text = text.strip()
        if voice is None:
            code = deputies.parse_bind_command(text)
            # "绑定 123456" (or a bare/short code: bind_deputy explains the format); a citizen's
            # "绑定手机号" is not a bind command
            if code is not None and (code == "" or "".join(code.split()).isdigit()):
                return await deputies.bind_deputy(self.services, openid, code)
            deputy = await deputies.bound_deputy(self.services, openid)
            if deputy is not None:
                reply = await deputies.handle_deputy_message(self.services, deputy, text)
            else:
                # 受理/办结/转 from someone not bound as a deputy: say so, change nothing
                reply = deputies.unbound_reply(self.services, text)
            if reply is not None:
                return reply
        form = await self._load_form(openid)
        if form is not None:
            return await self._continue_form(form, text, voice)
        if await self.services.kv.get(started_key(openid)) is not None:
            await self.services.kv.delete(started_key(openid))
            if self._looks_like_form_answer(text):
                return self.texts.get("form_expired", minutes=self.services.settings.form_ttl // 60)
        if not text:
            return self.texts.get("citizen_help")
        return await self._citizen_text(openid, text, voice)

    def _looks_like_form_answer(self, text: str) -> bool:
        w = self.words
        return any(check(text) for check in (w.is_yes, w.is_no, w.is_cancel, w.is_skip, w.is_edit, w.is_no_details)) or (
            rf.normalize_phone(text) is not None
        )

    async def _command(self, openid: str, text: str) -> str | None:
        """`我的诉求`, `#1024`, `#1024 <text>`, `帮助`: deterministic, never through the classifier."""
        if self.words.is_my_tickets(text):
            return await citizens.my_tickets_text(self.services, openid)
        number = ticket_number(text)
        if number is not None:
            return await citizens.ticket_timeline_text(self.services, openid, number)
        note = ticket_note(text)
        if note is not None:
            return await citizens.add_citizen_note(self.services, openid, *note)
        if self.words.is_help(text):
            return self.texts.get("citizen_help")
        return None

    async def _parse(self, text: str) -> ParseResult:
        try:
            return await self.services.nlu.parse(text)
        except Exception:  # noqa: BLE001 - the NLU must never take the conversation down
            log.exception("NLU parse failed")
            return ParseResult.fallback(text)

    async def _citizen_text(self, openid: str, text: str, voice: Attachment | None) -> str:
        rating = parse_rating(text, self.words) if voice is None else None
        if rating is not None and await citizens.awaiting_rating(self.services, openid):
            return await citizens.rate_ticket(self.services, openid, *rating)
        command = await self._command(openid, text)
        if command is not None:
            return command
        parse = await self._parse(text)
        intent = parse.intent

        if voice is not None and intent not in _VOICE_NOT_REPORT:
            return await self._start_form(openid, text=text, parse=parse, attachment=voice)
        if intent == "report_issue":
            return await self._start_form(openid, text=text, parse=parse, attachment=voice)
        if intent == "nlu_fallback" and parse.best_real_intent() == "report_issue" and (
            len(text) >= FALLBACK_REPORT_MIN_CHARS and self.words.has_content(text)
        ):
            return await self._start_form(openid, text=text, parse=parse)
        if intent == "legislative_opinion":
            return await self._start_form(
                openid, text=text, parse=parse, category=LEGISLATIVE_CATEGORY, intro="form_legislative_intro"
            )
        if intent == "rate":
            score = find_rating(text, self.words)
            if not await citizens.awaiting_rating(self.services, openid):
                return self.texts.get("citizen_rate_nothing")
            if score is None:
                return self.texts.get("citizen_rate_ask_again")
            return await citizens.rate_ticket(self.services, openid, score, "")
        if intent == "cancel":
            return self.texts.get("citizen_nothing_to_cancel")
        return await self._answer_intent(openid, intent, parse)

    async def _answer_intent(self, openid: str, intent: str, parse: ParseResult) -> str:
        """The reply to an intent that needs no form (also used for mid-form digressions)."""
        if intent == "check_status":
            number = _ticket_entity(parse)
            if number is not None:
                return await citizens.ticket_timeline_text(self.services, openid, number)
            return await citizens.my_tickets_text(self.services, openid)
        if intent == "ask_deputy":
            station = await citizens.bound_station(self.services, openid)
            if station:
                return self.texts.get("citizen_ask_deputy_station", station=station.name)
            return self.texts.get("citizen_ask_deputy")
        # greet, ask_scope, nlu_fallback, affirm, deny and anything new: what you can do here
        return self.texts.get(_FIXED_REPLIES.get(intent, "citizen_help"))

    # --- the report form -------------------------------------------------------------------------
    async def _start_form(
        self,
        openid: str,
        *,
        text: str = "",
        parse: ParseResult | None = None,
        attachment: Attachment | None = None,
        category: str | None = None,
        intro: str = "",
    ) -> str:
        station = await citizens.bound_station(self.services, openid)
        form = rf.start_form(
            openid,
            self.words,
            text=text,
            parse=parse,
            category=category,
            station=(station.code, station.name, station.town) if station else None,
            attachment=attachment,
            started_at=self.services.clock.now().isoformat(timespec="seconds"),
        )
        await self._save_form(form)
        await self.services.kv.set(started_key(openid), "1", ttl=STARTED_TTL)
        log.info("report form started by %s", mask_openid(openid))
        lines = []
        if parse is not None and parse.confidence_of("emergency") >= EMERGENCY_HINT_MIN:
            lines.append(self.texts.get("form_emergency_hint"))
        if intro:
            lines.append(self.texts.get(intro))
        lines.append(self.texts.get("form_started"))
        if attachment is not None and not (attachment.kind == "voice" and form.summary):
            note = rf.attachment_note(form, attachment)
            lines.append(self.texts.get(note.note, **note.params))
        lines.append(rf.prompt(form, self.texts))
        return "\n".join(lines)

    async def _continue_form(self, form: ReportForm, text: str, voice: Attachment | None) -> str:
        openid = form.openid
        if self.words.is_cancel(text):
            return await self._cancel(form)
        if voice is not None:
            rf.attach(form, voice)
        if voice is None:
            command = await self._command(openid, text)
            if command is not None:
                return self._with_reminder(command, form)
        parse = await self._parse(text)
        intent, confidence = parse.intent, parse.confidence
        if intent == "emergency" and confidence >= EMERGENCY_MIN_CONFIDENCE:
            await self._save_form(form)  # keep an attached voice
            return self._with_reminder(self.texts.get("citizen_emergency"), form)
        outcome = rf.answer(form, text, self.words, parse)
        if not outcome.valid and intent in _DIGRESSIONS and confidence >= DIGRESSION_MIN_CONFIDENCE:
            await self._save_form(form)
            return self._with_reminder(await self._answer_intent(openid, intent, parse), form)
        if outcome.action == "cancel":
            return await self._cancel(form)
        if outcome.action == "submit":
            return await self._submit(form)
        await self._save_form(form)
        return rf.render(outcome, form, self.texts)

    def _with_reminder(self, reply: str, form: ReportForm | None) -> str:
        if form is None:
            return reply
        return reply + "\n\n" + rf.reminder(form, self.texts)

    async def _end_form(self, openid: str) -> None:
        await self.services.kv.delete(form_key(openid))
        await self.services.kv.delete(started_key(openid))

    async def _cancel(self, form: ReportForm) -> str:
        await self._end_form(form.openid)
        log.info("report form cancelled by %s", mask_openid(form.openid))
        return self.texts.get("form_cancelled")

    async def _submit(self, form: ReportForm) -> str:
        draft = ReportDraft(
            citizen_openid=form.openid,
            category=form.category,
            summary=form.summary,
            place=form.place,
            details=form.details,
            town=form.town,
            qr_station_code=form.qr_station_code,
            attachments=form.attachment_objects(),
            phone=form.phone,
            share_contact=bool(form.phone) and form.share_contact,
        )
        try:
            # a form whose ticket was filed but not cleared (the store failed) is not filed twice
            ticket = await tickets.filed_from_form(self.services, draft, form.started_at)
            if ticket is None:
                ticket = await tickets.submit_report(self.services, draft)
        except Exception:  # noqa: BLE001 - keep the form so "是" can be sent again
            log.exception("submitting the report of %s failed", mask_openid(form.openid))
            await self._save_form(form)
            return self.texts.get("form_submit_failed")
        # the ticket is committed: from here on the citizen is told so, whatever else fails
        try:
            await self._end_form(form.openid)
        except Exception:  # noqa: BLE001
            log.exception("ticket #%d of %s is filed, but its form could not be cleared",
                          ticket.number, mask_openid(form.openid))
        return self.texts.get("form_submitted", number=ticket.number)

    async def _load_form(self, openid: str) -> ReportForm | None:
        raw = await self.services.kv.get(form_key(openid))
        if raw is None:
            return None
        try:
            return ReportForm.from_json(raw)
        except (ValueError, TypeError):
            log.warning("dropping unreadable form state of %s", mask_openid(openid))
            await self.services.kv.delete(form_key(openid))
            return None

    async def _save_form(self, form: ReportForm) -> None:
        # each answer renews the TTL: the form expires form_ttl after the citizen's last answer
        await self.services.kv.set(form_key(form.openid), form.to_json(), ttl=self.services.settings.form_ttl)
