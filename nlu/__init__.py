"""The Chinese NLU behind bot.core.ports.NLU: an embedded engine (default) and a Rasa server backend.

Importing this package loads nothing heavy; the embedded model is loaded (or trained) on first use."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.ports import NLU
    from bot.settings import Settings


def build_nlu(settings: Settings) -> NLU:
    """The engine chosen by settings.nlu_backend: "embedded" (default) or "rasa" (falls back to the
    embedded engine when the server is down, slow or answers garbage)."""
    from nlu.embedded import load_embedded

    backend = (settings.nlu_backend or "embedded").strip().lower()
    embedded = load_embedded()
    if backend == "embedded":
        return embedded
    if backend == "rasa":
        from nlu.rasa_backend import RasaNLU

        return RasaNLU(settings.rasa_url, settings.rasa_timeout, fallback=embedded)
    raise ValueError(f"unknown ZTC_NLU_BACKEND {settings.nlu_backend!r}: use 'embedded' or 'rasa'")
