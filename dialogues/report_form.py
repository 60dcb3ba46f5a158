"""The citizen's report form: plain data and small pure functions (no SQL, no HTTP).

Slots, asked in this order, each only while still missing:
  what (one-line summary) → where (town/street + village/community) → details (free text)
  → phone (optional; one question with the consent inside it) → confirm (the summary, short lines).

- A place entity in the first message or a WeChat location fills `where`, so it is not asked
  again. The station of a scanned QR code routes the report but does not answer `where` (a
  station serves several villages): the question then offers the station's places as examples.
- The phone answer says who may see the number: a number alone goes to the deputy; with
  「只给工作人员」 (or 不给代表 …) only staff see it; 不留/跳过 leaves none.
- What the citizen wrote is stored as written (places as they wrote them too); the words are
  folded only to be matched.
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
from bot.core.people import Station
from bot.core.tickets import CATEGORIES, Attachment
from bot.texts import Texts
from dialogues.words import Words, bare, normalize

FALLBACK_CATEGORY = "其他"
MIN_CATEGORY_CONFIDENCE = 0.2  # below this the NLU is guessing; keep 其他 and let staff sort it
SUMMARY_MAX = 60  # a longer first message becomes the details, its start the summary
SHOWN_DETAILS_MAX = 150  # in the confirm paragraph: WeChat cuts passive replies at 2048 bytes
TEXT_MAX = 2000  # a slot never grows beyond this (WeChat texts are ≤ 2048 bytes anyway)
MAX_ATTACHMENTS = 20

STEPS = ("what", "where", "details", "phone", "confirm")
WHERE_EXAMPLES = 3  # of the QR station's places, in the where question
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


PLACE_GAP_MAX = 2  # places this close ("湖塘镇的西村") are one stretch of the citizen's words


def place_entities(parse: ParseResult | None) -> str:
    """The places an NLU result found, as the citizen wrote them, in text order: '松陵永康社区'
    for "松陵永康社区门口…" (the NLU's canonical names are for matching: `place_names`)."""
    if parse is None:
        return ""
    text = parse.text
    spans: list[tuple[int, int]] = []
    values: list[str] = []
    for entity in sorted((e for e in parse.entities_of("place") if e.value), key=lambda e: e.start or 0):
        start, end = entity.start, entity.end
        if not text or start is None or end is None or not 0 <= start < end <= len(text):
            values.append(entity.value.strip())  # no offsets: the value is all there is
            continue
        village = _VILLAGE_AFTER.match(text[end:])
        spans.append((start, end + (len(village.group(1)) if village else 0)))
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start - merged[-1][1] <= PLACE_GAP_MAX:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in merged:
        values.append(text[start:end].strip())
    unique: list[str] = []
    for value in values:
        if value and not any(value in v for v in unique):
            unique.append(value)
    return " ".join(unique)


def place_names(parse: ParseResult | None) -> list[str]:
    """The canonical place names of an NLU result (湖塘镇 for 湖塘), for routing."""
    names = [e.value.strip() for e in parse.entities_of("place")] if parse is not None else []
    return [n for i, n in enumerate(names) if n and n not in names[:i]]


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
    place_source: str = ""  # entity | text | location
    place_names: list[str] = field(default_factory=list)  # canonical, from the NLU (routing)
    town: str = ""
    qr_station_code: str | None = None  # routes the report; `where` is still asked
    qr_station_name: str = ""
    qr_station_places: list[str] = field(default_factory=list)  # examples in the where question
    details: str = ""
    details_done: bool = False
    category: str = FALLBACK_CATEGORY
    category_confidence: float = 0.0
    attachments: list[dict[str, str]] = field(default_factory=list)
    phone: str | None = None
    phone_done: bool = False
    share_contact: bool = False  # the deputy may see the phone (else only staff)
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
    station: Station | None = None,
    attachment: Attachment | None = None,
    started_at: str = "",
) -> ReportForm:
    """A new form, pre-filled from the first message.

    `station` is the station bound by the scanned QR code: passed on for routing, and its places
    are the examples of the where question. `category` forces a category (legislative opinions)."""
    form = ReportForm(openid=openid, started_at=started_at)
    if station:
        form.qr_station_code, form.qr_station_name, form.town = station.code, station.name, station.town
        form.qr_station_places = list(station.places)
    _take_category(form, parse)
    if category:
        form.category, form.category_confidence = category, 1.0
    if text and words.has_content(text):
        _set_summary(form, text)
    if form.summary:
        _take_place(form, parse)
    phone = phone_entity(parse)
    if phone and form.summary:
        form.phone, form.phone_done, form.share_contact = phone, True, not words.is_private(text)
    if attachment:
        attach(form, attachment)
    return form


def _take_place(form: ReportForm, parse: ParseResult | None) -> None:
    place = place_entities(parse)
    if place:
        form.place, form.place_source, form.place_names = place, "entity", place_names(parse)


def _set_summary(form: ReportForm, text: str) -> None:
    text = text.strip()[:TEXT_MAX]
    one_line = " ".join(text.split())
    if len(one_line) <= SUMMARY_MAX:
        form.summary = text
        return
    # a long letter: its start is the summary, the whole letter (as written) the details
    form.summary = one_line[:SUMMARY_MAX] + "…"
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
    if attachment.kind == "location" and not form.place:
        form.place, form.place_source, form.place_names = attachment.text, "location", []
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
            _take_place(form, parse)
        return ASK
    if step == "where":
        if len(text) < 2:
            return Outcome(note="form_where_again", replace_prompt=True, valid=False)
        form.place, form.place_source, form.place_names = text[:200], "text", place_names(parse)
        return ASK
    if step == "details":
        if not words.is_no_details(text):
            form.details = (form.details + "\n" + text if form.details else text)[:TEXT_MAX]
            _take_category(form, parse)
        form.details_done = True
        return ASK
    if step == "phone":
        if words.is_skip(text) or words.is_no(text):
            form.phone, form.phone_done, form.share_contact = None, True, False
            return ASK
        if not _take_phone(form, text, words):
            return Outcome(note="form_phone_invalid", replace_prompt=True, valid=False)
        return ASK
    # confirm: a number or 只给工作人员 sent late still counts; anything else gets the short line
    if words.is_yes(text):
        return Outcome(action="submit")
    if words.is_no(text) or words.is_edit(text):
        form.choosing_edit = True
        return ASK
    if _take_phone(form, text, words):
        return ASK
    if form.phone and words.is_private(text):
        form.share_contact = False
        return ASK
    return Outcome(note="form_confirm_again", replace_prompt=True, valid=False)


def _take_phone(form: ReportForm, text: str, words: Words) -> bool:
    """The number in `text`, for the deputy unless the text keeps it for staff only."""
    phone = normalize_phone(text)
    if phone:
        form.phone, form.phone_done, form.share_contact = phone, True, not words.is_private(text)
    return phone is not None


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
        form.place, form.place_source, form.place_names = "", "", []
    elif slot == "details":
        form.details, form.details_done = "", False
    elif slot == "phone":
        form.phone, form.phone_done, form.share_contact = None, False, False
    return ASK


# --- rendering --------------------------------------------------------------------------------
def prompt(form: ReportForm, texts: Texts) -> str:
    """The question for the current step (the summary at confirm)."""
    step = form.step
    if step == "confirm":
        return texts.get("form_ask_confirm", summary=summary_lines(form, texts),
                         instruction=texts.get("form_confirm_again"))
    if step == "where" and form.qr_station_places:
        examples = "、".join(form.qr_station_places[:WHERE_EXAMPLES])
        return texts.get("form_ask_where_station", station=form.qr_station_name, examples=examples)
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


def summary_lines(form: ReportForm, texts: Texts) -> str:
    """What / where / details / attachments / phone / category, one short line each."""
    parts = [texts.get("form_sum_what", summary=form.summary), texts.get("form_sum_where", place=form.place)]
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
    return "\n".join(parts)


def _attachment_items(form: ReportForm, texts: Texts) -> str:
    counts: dict[str, int] = {}
    for a in form.attachments:
        counts[a["kind"]] = counts.get(a["kind"], 0) + 1
    units = texts.raw("form_attachment_units")  # image: 照片{count}张 …
    return "、".join(str(units.get(k, k + "{count}")).format(count=n) for k, n in counts.items())
