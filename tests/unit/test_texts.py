"""The texts files against the code: every key the code asks for exists, every key there is used."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.core.reach import Outcome
from bot.core.tickets import AttachmentKind, TicketStatus, TimelineKind
from bot.texts import TEXTS_DIR, default_texts

ROOT = Path(__file__).resolve().parents[2]
SOURCES = "\n".join(
    path.read_text(encoding="utf-8")
    for folder in ("bot", "handlers", "dialogues")
    for path in sorted((ROOT / folder).rglob("*.py"))
)
CHECKED_FILES = ("deputy.yaml", "notify.yaml", "citizen.yaml", "dialogue.yaml")


def test_every_domain_error_key_has_a_text() -> None:
    texts = default_texts()
    keys = set(re.findall(r'DomainError\(\s*"(\w+)"', SOURCES))
    assert {"rate_not_resolved", "rate_out_of_range", "ticket_not_yours"} <= keys
    assert sorted(k for k in keys if k not in texts) == []


def _dynamic_suffixes() -> dict[str, set[str]]:
    """Keys built at run time (f"deputy_status_{...}") and the suffixes the code can produce."""
    notify = "".join((ROOT / "handlers" / f).read_text(encoding="utf-8") for f in ("notify.py", "staff_pushes.py"))
    form = (ROOT / "dialogues" / "report_form.py").read_text(encoding="utf-8")
    return {
        "deputy_status_": {s.value for s in TicketStatus},
        "notify_status_": set(re.findall(r'(?<![\w.])status_message\([^)]*?"(\w+)"', notify)),
        "form_ask_": set(re.findall(r'"(\w+)"', form)),
        "reach_": {o.value for o in Outcome},  # handlers/channels.py reach_text
        "detail_attachment_": {k.value for k in AttachmentKind},  # handlers/ticket_detail.py
    }


def test_every_text_key_is_used() -> None:
    dynamic = _dynamic_suffixes()
    unused = []
    for name in CHECKED_FILES:
        entries = yaml.safe_load((TEXTS_DIR / name).read_text(encoding="utf-8"))
        for key in entries:
            if f'"{key}"' in SOURCES:
                continue
            prefix = next((p for p in dynamic if key.startswith(p)), None)
            if prefix is not None and key[len(prefix):] in dynamic[prefix]:
                continue
            unused.append(f"{name}: {key}")
    assert unused == []


def test_every_timeline_event_text_is_an_event_the_code_records() -> None:
    recorded = {TimelineKind[name].value
                for name in re.findall(r'TimelineEntry\(\s*\w+,\s*TimelineKind\.(\w+)', SOURCES)}
    shown = set(default_texts().raw("citizen_event"))
    assert shown <= recorded, shown - recorded
