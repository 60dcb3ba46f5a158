"""The typed NLU result: built from Rasa's shape, tolerant of garbage, printed back unchanged."""
from __future__ import annotations

import json

import pytest

from bot.core.parse import FALLBACK_INTENT, Entity, ParseResult, Ranked

RASA_SHAPE = {
    "text": "#1024 松陵街道路灯还没修",
    "intent": {"name": "nlu_fallback", "confidence": 0.4},
    "entities": [
        {"entity": "ticket", "value": "1024", "start": 1, "end": 5, "confidence": 0.99, "extractor": "regex"},
        {"entity": "place", "value": "松陵街道", "start": 6, "end": 10},
        {"entity": "place", "value": "永康社区"},
    ],
    "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.4}, {"name": "check_status", "confidence": 0.35},
                       {"name": "report_issue", "confidence": 0.2}],
    "category": {"name": "城乡建设", "confidence": 0.7},
    "category_ranking": [{"name": "城乡建设", "confidence": 0.7}, {"name": "其他", "confidence": 0.1}],
}


def test_fields_and_helpers() -> None:
    p = ParseResult.from_dict(RASA_SHAPE)
    assert (p.text, p.intent, p.confidence) == (RASA_SHAPE["text"], "nlu_fallback", 0.4)
    assert p.ranking[1] == Ranked("check_status", 0.35)
    assert p.confidence_of("report_issue") == 0.2 and p.confidence_of("emergency") == 0.0
    assert p.best_real_intent() == "check_status"
    assert p.entity("ticket") == Entity("ticket", "1024", 1, 5)
    assert [e.value for e in p.entities_of("place")] == ["松陵街道", "永康社区"]
    assert p.entity("phone") is None
    assert (p.category, p.category_confidence, p.category_ranking[0].name) == ("城乡建设", 0.7, "城乡建设")


def test_to_dict_is_the_engines_answer_byte_for_byte() -> None:
    p = ParseResult.from_dict(RASA_SHAPE)
    assert json.dumps(p.to_dict(), ensure_ascii=False) == json.dumps(RASA_SHAPE, ensure_ascii=False)
    p.to_dict()["entities"].clear()  # a copy: the result stays as built
    assert len(p.to_dict()["entities"]) == 3


@pytest.mark.parametrize("garbage", [
    None, "oops", [], {}, {"intent": "greet"}, {"intent": {"name": "greet", "confidence": "high"}},
    {"intent": {"name": None, "confidence": None}}, {"intent": None, "entities": "x", "intent_ranking": {"a": 1}},
])
def test_garbage_reads_as_not_understood(garbage: object) -> None:
    p = ParseResult.from_dict(garbage)
    assert (p.intent, p.confidence) == (FALLBACK_INTENT, 0.0)
    assert p.best_real_intent() == "" and p.entities == () and p.category == ""


def test_malformed_items_are_skipped_not_fatal() -> None:
    p = ParseResult.from_dict({
        "intent": {"name": "greet", "confidence": 0.9},
        "intent_ranking": ["greet", {"name": ""}, {"name": "greet", "confidence": "x"}, {"name": "thanks"}],
        "entities": [7, {"value": "no kind"}, {"entity": "place", "value": None, "start": "1"}],
        "category": {"name": "城乡建设", "confidence": None},
    })
    assert p.ranking == (Ranked("greet", 0.0), Ranked("thanks", 0.0))
    assert p.entities == (Entity("place", "", None, None),)
    assert (p.category, p.category_confidence) == ("城乡建设", 0.0)


def test_fallback() -> None:
    p = ParseResult.fallback("你好")
    assert (p.text, p.intent, p.confidence, p.entities) == ("你好", FALLBACK_INTENT, 0.0, ())
