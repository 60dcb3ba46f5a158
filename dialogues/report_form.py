"""The citizen's report form: plain data and small pure functions (no SQL, no HTTP).

Slots, asked in this order, each only while still missing:
  what (one-line summary) → where (town/street + village/community) → details (free text)
  → phone (optional) → consent (only when a phone was given) → confirm (summary paragraph).

- A place entity in the first message, a WeChat location or the station bound by a scanned QR
  code fills `where`, so it is not asked again.
- Photos, voice and locations are attached at any step (`attach`).
- The category comes from the NLU result of the first message; the details may replace it when
  the NLU is more confident about them; 其他 is the fallback.
- At confirm, 否/修改 opens a small "which part?" menu; the chosen slot is cleared and asked
  again, then the summary comes back.

The state is a dataclass of plain data; the chat keeps it as the user's scene state (handlers/chat),
which expires, so an abandoned form simply disappears and creates nothing.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from bot.core.parse import ParseResult
from bot.core.tickets import CATEGORIES, Attachment
from bot.texts import Texts
from dialogues.words import Words, bare, normalize

FALLBACK_CATEGORY = "其他"
MIN_CATEGORY_CONFIDENCE = 0.2  # below this the NLU is guessing; keep 其他 and let staff sort it
SUMMARY_MAX = 60  # a longer first message becomes the details, its start the summary
SHOWN_DETAILS_MAX = 150  # in the confirm paragraph: WeChat cuts passive replies at 2048 bytes
TEXT_MAX = 2000  # a slot never grows beyond this (WeChat texts are ≤ 2048 bytes anyway)
MAX_ATTACHMENTS = 20

STEPS = ("what", "where", "details", "phone", "consent", "confirm")
EDIT = "edit"  # the "which part do you want to change?" menu at confirm

_MOBILE = re.compile(r"(?<!\d)(?:\+?86)?(1[3-9]\d{9})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})-?(\d{7,8})(?!\d)")
_PHONE_SEPARATORS = re.compile(r"[\s()（）]+")


def normalize_phone(text: str) -> str | None:
    """A mainland mobile (13912345678) or landline (0512-63001234) number found in `text`."""
    flat = _PHONE_SEPARATORS.sub("", normalize(text))
    mobile = _MOBILE.search(re.sub(r"[-—–]", "", flat))  # 139-1234-5678
    if mobile:
        return mobile.group(1)
    landline = _LANDLINE.search(flat)
    if landline:
        return f"{landline.group(1)}-{landline.group(2)}"
    return None


# A village/community written right after a recognised town ("松陵街道永康社区"): the place
# table may not know every village, but routing matches them against the stations' lists.
_VILLAGE_AFTER = re.compile(r"^([^\s\d的地在了和与跟这那有是，。,.!！?？、]{1,6}?(?:社区|村|小区))")


def place_entities(parse: ParseResult | None) -> str:
    """The place entities of an NLU result in text order, e.g. '松陵街道 永康社区'."""
    if parse is None:
        return ""
    text = parse.text
    found = sorted((e for e in parse.entities_of("place") if e.value), key=lambda e: e.start or 0)
    values: list[str] = []

    def add(value: str) -> None:
        if value and not any(value in v for v in values):
            values.append(value)

    for entity in found:
        add(entity.value.strip())
        end = entity.end
        if text and end is not None and 0 <= end <= len(text):
            village = _VILLAGE_AFTER.match(text[end:])
            if village:
                add(village.group(1))
    return " ".join(values)


def phone_entity(parse: ParseResult | None) -> str | None:
    for entity in parse.entities_of("phone") if parse is not None else ():
        phone = normalize_phone(entity.value) if entity.value else None
        if phone:
            return phone
    return None


def category_of(parse: ParseResult | None) -> tuple[str, float]:
    """(category, confidence) from an NLU result; (其他, 0) when missing, unknown or too unsure."""
    if parse is not None and parse.category in CATEGORIES and parse.category != FALLBACK_CATEGORY and (
        parse.category_confidence >= MIN_CATEGORY_CONFIDENCE
    ):
        return parse.category, parse.category_confidence
    return FALLBACK_CATEGORY, 0.0


@dataclass
class ReportForm:
    openid: str
    summary: str = ""
    place: str = ""
    place_source: str = ""  # entity | text | location | station
    town: str = ""
    qr_station_code: str | None = None
    details: str = ""
    details_done: bool = False
    category: str = FALLBACK_CATEGORY
    category_confidence: float = 0.0
    attachments: list[dict[str, str]] = field(default_factory=list)
    phone: str | None = None
    phone_done: bool = False
    share_contact: bool = False
    consent_done: bool = False
    choosing_edit: bool = False
    started_at: str = ""  # ISO time, for logs and staff

    # --- where are we --------------------------------------------------------------------------
    @property
    def step(self) -> str:
        if self.choosing_edit:
            return EDIT
        if not self.summary:
            return "what"
        if not self.place:
            return "where"
        if not self.details_done:
            return "details"
        if not self.phone_done:
            return "phone"
        if self.phone and not self.consent_done:
            return "consent"
        return "confirm"

    def attachment_objects(self) -> list[Attachment]:
        return [Attachment(**a) for a in self.attachments]

    # --- serialisation -------------------------------------------------------------------------
    def to_data(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ReportForm:
        known = {f.name for f in dataclasses.fields(cls)}
        # tolerate keys written by a newer or older version of this form
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Outcome:
    """What the conversation should do after one answer.

    action: ask (show `note`, then the current step's question) | submit | cancel
    `replace_prompt`: the note already says what to answer (e.g. a phone example).
    `valid`: False when the text did not answer the question (nothing changed); the conversation
    may then treat it as a new question instead."""

    action: str = "ask"
    note: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    replace_prompt: bool = False
    valid: bool = True


ASK = Outcome()


# --- starting ---------------------------------------------------------------------------------
def start_form(
    openid: str,
    words: Words,
    *,
    text: str = "",
    parse: ParseResult | None = None,
    category: str | None = None,
    station: tuple[str, str, str] | None = None,
    attachment: Attachment | None = None,
    started_at: str = "",
) -> ReportForm:
    """A new form, pre-filled from the first message.

    `station` is (code, name, town) of the station bound by the scanned QR code; it is always
    passed on for routing and fills `where` when the message names no place. `category` forces a
    category (used for legislative opinions)."""
    form = ReportForm(openid=openid, started_at=started_at)
    if station:
        form.qr_station_code = station[0]
    _take_category(form, parse)
    if category:
        form.category, form.category_confidence = category, 1.0
    if text and words.has_content(text):
        _set_summary(form, text)
    place = place_entities(parse)
    if place and form.summary:
        form.place, form.place_source = place, "entity"
    phone = phone_entity(parse)
    if phone and form.summary:
        form.phone, form.phone_done = phone, True
    if attachment:
        attach(form, attachment)
    if not form.place and station:
        form.place, form.place_source, form.town = station[1], "station", station[2]
    return form


def _set_summary(form: ReportForm, text: str) -> None:
    text = " ".join(text.split())[:TEXT_MAX]
    if len(text) <= SUMMARY_MAX:
        form.summary = text
        return
    # a long letter: its start is the summary, the whole letter the details (not asked again)
    form.summary = text[:SUMMARY_MAX] + "…"
    form.details, form.details_done = text, True


def _take_category(form: ReportForm, parse: ParseResult | None) -> None:
    name, confidence = category_of(parse)
    if name != FALLBACK_CATEGORY and confidence > form.category_confidence:
        form.category, form.category_confidence = name, confidence


# --- attachments ------------------------------------------------------------------------------
def attach(form: ReportForm, attachment: Attachment) -> Outcome:
    """Keep a photo, voice or location with the report; a location also fills `where`."""
    if len(form.attachments) < MAX_ATTACHMENTS:
        form.attachments.append(dataclasses.asdict(attachment))
    if attachment.kind == "location":
        if not form.place or form.place_source == "station":
            form.place, form.place_source = attachment.text, "location"
            form.town = ""
    return attachment_note(form, attachment)


def attachment_note(form: ReportForm, attachment: Attachment) -> Outcome:
    """'Got your photo (2 so far)', then the current question."""
    if attachment.kind == "location":
        return Outcome(note="form_got_location", params={"place": attachment.text})
    count = sum(1 for a in form.attachments if a["kind"] == attachment.kind)
    key = "form_got_image" if attachment.kind == "image" else "form_got_voice"
    return Outcome(note=key, params={"count": count})


# --- answers ----------------------------------------------------------------------------------
def answer(form: ReportForm, text: str, words: Words, parse: ParseResult | None = None) -> Outcome:
    """Fill the current step with `text` (the conversation has already ruled out digressions)."""
    if words.is_cancel(text):
        return Outcome(action="cancel")
    text = text.strip()
    step = form.step
    if step == EDIT:
        return _choose_edit(form, text, words)
    if step == "what":
        if not words.has_content(text):
            return Outcome(note="form_what_again", replace_prompt=True, valid=False)
        _set_summary(form, text)
        _take_category(form, parse)
        if not form.place:
            place = place_entities(parse)
            if place:
                form.place, form.place_source = place, "entity"
        return ASK
    if step == "where":
        if len(text) < 2:
            return Outcome(note="form_where_again", replace_prompt=True, valid=False)
        form.place, form.place_source, form.town = text[:200], "text", ""
        return ASK
    if step == "details":
        if not words.is_no_details(text):
            form.details = (form.details + "\n" + text if form.details else text)[:TEXT_MAX]
            _take_category(form, parse)
        form.details_done = True
        return ASK
    if step == "phone":
        if words.is_skip(text) or words.is_no(text):
            form.phone, form.phone_done, form.share_contact, form.consent_done = None, True, False, True
            return ASK
        phone = normalize_phone(text)
        if not phone:
            return Outcome(note="form_phone_invalid", replace_prompt=True, valid=False)
        form.phone, form.phone_done, form.consent_done = phone, True, False
        return ASK
    if step == "consent":
        if words.is_yes(text):
            form.share_contact, form.consent_done = True, True
            return ASK
        if words.is_no(text):
            form.share_contact, form.consent_done = False, True
            return ASK
        return Outcome(note="form_consent_again", replace_prompt=True, valid=False)
    # confirm
    if words.is_yes(text):
        return Outcome(action="submit")
    if words.is_no(text) or words.is_edit(text):
        form.choosing_edit = True
        return ASK
    return Outcome(note="form_confirm_again", valid=False)


def _choose_edit(form: ReportForm, text: str, words: Words) -> Outcome:
    slot = words.edit_slots.get(bare(text))
    if slot is None:
        if words.is_yes(text) or words.is_no(text):  # changed their mind: back to the summary
            form.choosing_edit = False
            return ASK
        return Outcome(note="form_edit_again", replace_prompt=True, valid=False)
    form.choosing_edit = False
    if slot == "what":
        form.summary = ""
    elif slot == "where":
        form.place, form.place_source, form.town = "", "", ""
    elif slot == "details":
        form.details, form.details_done = "", False
    elif slot == "phone":
        form.phone, form.phone_done, form.share_contact, form.consent_done = None, False, False, False
    return ASK


# --- rendering --------------------------------------------------------------------------------
def prompt(form: ReportForm, texts: Texts) -> str:
    """The question for the current step (the summary paragraph at confirm)."""
    step = form.step
    if step == "confirm":
        return texts.get("form_ask_confirm", summary=summary_paragraph(form, texts))
    return texts.get(f"form_ask_{step}")


def render(outcome: Outcome, form: ReportForm, texts: Texts) -> str:
    note = texts.get(outcome.note, **outcome.params) if outcome.note else ""
    if outcome.replace_prompt:
        return note
    question = prompt(form, texts)
    return f"{note}\n{question}" if note else question


def reminder(form: ReportForm, texts: Texts) -> str:
    """Appended to an answer given mid-form, so the citizen knows the form is still open."""
    return texts.get("form_reminder", question=prompt(form, texts))


def summary_paragraph(form: ReportForm, texts: Texts) -> str:
    parts = [texts.get("form_sum_what", summary=form.summary)]
    place_key = "form_sum_where_station" if form.place_source == "station" else "form_sum_where"
    parts.append(texts.get(place_key, place=form.place))
    if form.details and form.details != form.summary:
        details = form.details if len(form.details) <= SHOWN_DETAILS_MAX else form.details[:SHOWN_DETAILS_MAX] + "…"
        parts.append(texts.get("form_sum_details", details=details))
    items = _attachment_items(form, texts)
    if items:
        parts.append(texts.get("form_sum_attachments", items=items))
    if form.phone:
        key = "form_sum_phone_shared" if form.share_contact else "form_sum_phone_private"
        parts.append(texts.get(key, phone=form.phone))
    else:
        parts.append(texts.get("form_sum_no_phone"))
    parts.append(texts.get("form_sum_category", category=form.category))
    return "".join(parts)


def _attachment_items(form: ReportForm, texts: Texts) -> str:
    counts: dict[str, int] = {}
    for a in form.attachments:
        counts[a["kind"]] = counts.get(a["kind"], 0) + 1
    units = texts.raw("form_attachment_units")  # image: 照片{count}张 …
    return "、".join(str(units.get(k, k + "{count}")).format(count=n) for k, n in counts.items())
