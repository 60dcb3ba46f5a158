"""The NLU's answer as one typed value, built once at the NLU edge (nlu/) from Rasa's /model/parse
shape plus `category` and `category_ranking`. Pure: imports nothing of the project.

`from_dict` accepts whatever an engine (or a misbehaving server) produced: anything missing or
malformed reads as "not understood" (nlu_fallback, confidence 0), never as an exception. The dict
it was built from is kept, so `zhitongche nlu parse` prints exactly what the engine answered."""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FALLBACK_INTENT = "nlu_fallback"


@dataclass(frozen=True)
class Ranked:
    name: str
    confidence: float


@dataclass(frozen=True)
class Entity:
    kind: str  # Rasa's `entity`: place | phone | ticket | …
    value: str
    start: int | None = None  # character offsets in the text, when the extractor gave them
    end: int | None = None


@dataclass(frozen=True)
class ParseResult:
    text: str
    intent: str = FALLBACK_INTENT
    confidence: float = 0.0
    ranking: tuple[Ranked, ...] = ()  # intents, best first
    entities: tuple[Entity, ...] = ()  # in the engine's order
    category: str = ""
    category_confidence: float = 0.0
    category_ranking: tuple[Ranked, ...] = ()
    backend: str = ""  # rasa | embedded-fallback | "" (the embedded engine)
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)

    @classmethod
    def from_dict(cls, data: Any) -> ParseResult:
        if not isinstance(data, Mapping):
            return cls(text="")
        intent, confidence = _intent(data.get("intent"))
        category = data.get("category")
        category_name = category.get("name") if isinstance(category, Mapping) else None
        return cls(
            text=str(data.get("text") or ""),
            intent=intent,
            confidence=confidence,
            ranking=_ranking(data.get("intent_ranking")),
            entities=tuple(_entities(data.get("entities"))),
            category=str(category_name) if category_name else "",
            category_confidence=_confidence(category) if isinstance(category, Mapping) else 0.0,
            category_ranking=_ranking(data.get("category_ranking")),
            backend=str(data.get("backend") or ""),
            raw=dict(data),
        )

    @classmethod
    def fallback(cls, text: str) -> ParseResult:
        """What a failed engine means: nothing understood."""
        return cls.from_dict({"text": text, "intent": {"name": FALLBACK_INTENT, "confidence": 0.0},
                              "entities": []})

    def to_dict(self) -> dict[str, Any]:
        """The engine's own answer (the public `zhitongche nlu parse` JSON)."""
        return copy.deepcopy(dict(self.raw))

    def confidence_of(self, name: str) -> float:
        """The intent's confidence in the ranking; 0 when it is not ranked."""
        return next((r.confidence for r in self.ranking if r.name == name), 0.0)

    def best_real_intent(self) -> str:
        """The best-ranked intent that is not nlu_fallback ("" when none)."""
        return next((r.name for r in self.ranking if r.name != FALLBACK_INTENT), "")

    def entities_of(self, kind: str) -> tuple[Entity, ...]:
        return tuple(e for e in self.entities if e.kind == kind)

    def entity(self, kind: str) -> Entity | None:
        """The first entity of this kind."""
        return next(iter(self.entities_of(kind)), None)


def _confidence(item: Mapping[str, Any]) -> float:
    try:
        return float(item.get("confidence") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _intent(intent: Any) -> tuple[str, float]:
    if not isinstance(intent, Mapping):
        return FALLBACK_INTENT, 0.0
    try:
        return str(intent.get("name") or FALLBACK_INTENT), float(intent.get("confidence") or 0.0)
    except (TypeError, ValueError):
        return FALLBACK_INTENT, 0.0


def _ranking(items: Any) -> tuple[Ranked, ...]:
    if not isinstance(items, (list, tuple)):
        return ()
    return tuple(Ranked(str(item["name"]), _confidence(item))
                 for item in items if isinstance(item, Mapping) and item.get("name"))


def _entities(items: Any) -> list[Entity]:
    if not isinstance(items, (list, tuple)):
        return []
    found = []
    for item in items:
        if not isinstance(item, Mapping) or not item.get("entity"):
            continue
        value = item.get("value")
        start, end = item.get("start"), item.get("end")
        found.append(Entity(str(item["entity"]), "" if value is None else str(value),
                            start if isinstance(start, int) else None, end if isinstance(end, int) else None))
    return found
