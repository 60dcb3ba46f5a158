"""The embedded NLU engine: character 1-3-gram TF-IDF, linear classifiers trained with
scikit-learn (nlu/training.py) and then flattened into numpy arrays (nlu/linear.py), so a parse is a
few dict look-ups and one small matrix product. Shipped in nlu/model/ (nlu/model_store.py)."""
from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from bot.core.parse import ParseResult
from bot.core.people import Station
from nlu import data as nd
from nlu.civic import CIVIC_PRIOR, is_short_and_not_civic
from nlu.entities import EntityExtractor
from nlu.linear import Model
from nlu.model_store import load_or_train
from nlu.text import features, normalize

log = logging.getLogger(__name__)

FALLBACK_INTENT = "nlu_fallback"
INTENT_THRESHOLD = 0.30  # below this the dialogue asks instead of acting (Rasa's FallbackClassifier)
RANKING_LENGTH = 10
INLINE_MAX_CHARS = 300  # async parse: longer texts run in a worker thread, not on the event loop


class EmbeddedNLU:
    """The default NLU: in-process, no network, deterministic."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._vocab = model.vocab
        self._table = model.char_table
        self._entities = EntityExtractor(model.places)
        self._learnt: tuple[tuple[str, tuple[str, ...]], ...] = ()  # the stations' (town, places)
        self._civic = model.civic
        labels = model.intent.labels
        self._shift = None
        if self._civic and CIVIC_PRIOR > 0 and "report_issue" in labels:
            self._shift = np.zeros(len(labels))
            self._shift[labels.index("report_issue")] = -CIVIC_PRIOR
        # both heads with one linear part each (the trained configuration): one stacked gather
        # instead of two on the hot path
        heads = (model.intent, model.category)
        self._fused = all(len(h.parts) == 1 and not h.parts[0].log_softmax for h in heads)
        if self._fused:
            self._w_all = np.ascontiguousarray(np.hstack([h.parts[0].weights for h in heads]))
            self._idf_all = np.ascontiguousarray(np.stack([h.parts[0].idf for h in heads], axis=1))
            self._split = len(model.intent.labels)

    def _head_probs(self, idx: np.ndarray, tf: np.ndarray, shift: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        m = self.model
        if not self._fused:
            return m.intent.scores(idx, tf, shift), m.category.scores(idx, tf)
        w = self._idf_all.take(idx, 0) * tf[:, None]  # (k, 2): each head's TF-IDF
        n_i, n_c = np.sqrt((w * w).sum(0)).tolist()
        g = self._w_all.take(idx, 0).astype(np.float64)  # one up-cast for both heads (exact)
        k = self._split
        z = ((w[:, 0] / (n_i or 1.0)) @ g[:, :k] + m.intent.bias) * m.intent.temperature
        if shift is not None:
            z = z + shift
        e = np.exp(z - z.max())
        zc = ((w[:, 1] / (n_c or 1.0)) @ g[:, k:] + m.category.bias) * m.category.temperature
        ec = np.exp(zc - zc.max())
        return e / e.sum(), ec / ec.sum()

    # --- the port ---------------------------------------------------------------------------
    async def learn_places(self, stations: Sequence[Station]) -> None:
        learnt = tuple(sorted({(s.town, tuple(s.places)) for s in stations}))
        if learnt == self._learnt:
            return
        # the table reads jieba's dictionary file for the villages' stems (tenths of a second): a thread
        places = await asyncio.to_thread(places_with_stations, self.model.places, learnt)
        self._entities = EntityExtractor(places)  # one reference swap: a parse sees old or new
        self._learnt = learnt
        log.info("place names: %d learnt from %d towns/places of the stations", len(places), len(learnt))

    async def parse(self, text: str) -> ParseResult:
        # a chat message parses in ~0.3 ms: inline is cheaper than a thread hop. A long letter
        # (up to ~15 ms at 5,000 characters) goes to a worker thread so the event loop keeps serving
        # other users meanwhile (the parse is pure Python + numpy over immutable model arrays:
        # thread-safe).
        if isinstance(text, str) and len(text) > INLINE_MAX_CHARS:
            return ParseResult.from_dict(await asyncio.to_thread(self.parse_sync, text))
        return ParseResult.from_dict(self.parse_sync(text))

    def parse_sync(self, text: str) -> dict[str, Any]:
        """The engine's own answer in Rasa's shape (what `zhitongche nlu parse` prints)."""
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        try:
            return self._parse(text)
        except Exception:  # never let one odd message take the conversation down
            log.exception("embedded NLU failed on a %d-character text", len(text))
            return _empty_result(text)

    def _parse(self, text: str) -> dict[str, Any]:
        norm = normalize(text, self._table)
        entities = self._entities.extract(text, norm)
        if not norm.strip():
            return _empty_result(text, entities)
        # sparse features: only the n-grams and words the model knows, with their counts
        counts = Counter(features(norm))
        ids = list(map(self._vocab.get, counts))
        cs = list(counts.values())
        if None in ids:
            cs = [c for i, c in zip(ids, cs) if i is not None]
            ids = [i for i in ids if i is not None]
            if not ids:  # nothing we have ever seen (emoji, another script): ask, do not guess
                return _empty_result(text, entities)
        idx = np.array(ids, dtype=np.int64)
        tf = np.array(cs, dtype=np.float64)
        if max(cs) > 1:
            tf = 1.0 + np.log(tf)
        shift = None
        if self._shift is not None and is_short_and_not_civic(norm, counts, self._civic):
            shift = self._shift
        intent_p, category_p = self._head_probs(idx, tf, shift)
        # one vectorised round for both heads (elementwise: the same values as one round each)
        vals = np.concatenate((intent_p, category_p)).round(4).tolist()
        k = len(intent_p)
        intent_ranking = _ranked(self.model.intent.labels, vals[:k])
        category_ranking = _ranked(self.model.category.labels, vals[k:])
        top = intent_ranking[0]
        intent = dict(top)
        if top["confidence"] < INTENT_THRESHOLD:
            intent = {"name": FALLBACK_INTENT, "confidence": INTENT_THRESHOLD}
            intent_ranking = [dict(intent)] + intent_ranking
        return {
            "text": text,
            "intent": intent,
            "entities": entities,
            "intent_ranking": intent_ranking[:RANKING_LENGTH],
            "category": dict(category_ranking[0]),
            "category_ranking": category_ranking,
        }


def places_with_stations(base: dict[str, str], stations: Sequence[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """The model's place table (surface → canonical) plus that of the stations (town, places);
    a canonical name always stands for itself, otherwise the stations' synonyms win."""
    learnt = nd.place_table(stations, default_towns=False).surfaces()
    merged = {**base, **learnt}
    merged.update({name: name for name, canonical in (*base.items(), *learnt.items()) if name == canonical})
    return merged


def _ranked(labels: tuple[str, ...], vals: list[float]) -> list[dict[str, Any]]:
    """Labels by rounded confidence, highest first (stable: ties keep label order)."""
    order = sorted(range(len(vals)), key=vals.__getitem__, reverse=True)
    return [{"name": labels[i], "confidence": vals[i]} for i in order]


def _empty_result(text: str, entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    intent = {"name": FALLBACK_INTENT, "confidence": INTENT_THRESHOLD}
    return {
        "text": text,
        "intent": intent,
        "entities": entities or [],
        "intent_ranking": [dict(intent)],
        "category": {"name": "其他", "confidence": 0.0},
        "category_ranking": [{"name": "其他", "confidence": 0.0}],
    }


_lock = threading.Lock()
_singleton: EmbeddedNLU | None = None


def load_embedded() -> EmbeddedNLU:
    """The process-wide engine: the shipped model, or one retrained when the training data changed."""
    global _singleton
    if _singleton is None:
        with _lock:
            if _singleton is None:
                engine = EmbeddedNLU(load_or_train())
                # the first parse loads jieba's dictionary (seconds): pay that here, where callers
                # load off the event loop, not on a citizen's first message
                engine.parse_sync("你好")
                _singleton = engine
    return _singleton
