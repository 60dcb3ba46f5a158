"""The embedded NLU engine: character 1-3-gram TF-IDF, linear classifiers trained with
scikit-learn and then flattened into numpy arrays, so a parse is a few dict look-ups and one small
matrix product (no sklearn on the hot path). Trained from nlu/data/*.yml and the dev split of the
shared real messages; cached under <repo>/.nlu-cache/ and rebuilt when the data hash changes."""
from __future__ import annotations

import asyncio
import logging
import math
import os
import pickle
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.domain import CATEGORIES
from nlu import data as nd
from nlu.entities import EntityExtractor
from nlu.text import MAX_CLASSIFY_CHARS, build_table, char_ngrams, normalize

log = logging.getLogger(__name__)

ENGINE_VERSION = "emb-1"
CACHE_DIR = nd.REPO_ROOT / ".nlu-cache"
INTENTS = ("greet", "goodbye", "thanks", "affirm", "deny", "cancel", "report_issue", "check_status",
           "ask_schedule", "ask_deputy", "ask_scope", "petition", "emergency", "legislative_opinion",
           "rate", "out_of_scope")
FALLBACK_INTENT = "nlu_fallback"
INTENT_THRESHOLD = 0.30  # below this the dialogue asks instead of acting (Rasa's FallbackClassifier)
RANKING_LENGTH = 10


@dataclass
class LinearHead:
    """softmax(T * (W[:, features] @ tfidf + b)) over `labels`."""

    labels: tuple[str, ...]
    idf: np.ndarray  # per vocabulary index; 0 where this head has no such feature
    weights: np.ndarray  # (n_vocab, n_labels) float32, row per feature: a gather is contiguous
    bias: np.ndarray
    temperature: float

    def scores(self, idx: np.ndarray, tf: np.ndarray) -> np.ndarray:
        w = tf * self.idf[idx]
        norm = math.sqrt(float(w @ w))
        if norm == 0.0:
            z = self.bias * self.temperature
        else:
            z = ((w / norm) @ self.weights[idx] + self.bias) * self.temperature
        z = z - z.max()
        e = np.exp(z)
        return e / e.sum()


@dataclass
class Model:
    version: str
    data_hash: str
    vocab: dict[str, int]
    intent: LinearHead
    category: LinearHead
    char_table: dict[int, int]
    places: dict[str, str]
    trained_on: dict[str, int]


class EmbeddedNLU:
    """The default NLU: in-process, no network, deterministic."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._vocab = model.vocab
        self._table = model.char_table
        self._entities = EntityExtractor(model.places)

    # --- the port ---------------------------------------------------------------------------
    async def parse(self, text: str) -> dict[str, Any]:
        # well under a millisecond: running it inline is cheaper than a thread hop
        return self.parse_sync(text)

    def parse_sync(self, text: str) -> dict[str, Any]:
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
        counts = Counter(char_ngrams(norm))
        vocab = self._vocab
        get = vocab.get
        pairs = [(i, c) for i, c in zip(map(get, counts), counts.values()) if i is not None]
        if pairs:
            idx = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
            tf = 1.0 + np.log(np.fromiter((p[1] for p in pairs), dtype=np.float64, count=len(pairs)))
        else:  # nothing we have ever seen (emoji, another script): ask, do not guess
            return _empty_result(text, entities)
        intent_p = self.model.intent.scores(idx, tf)
        category_p = self.model.category.scores(idx, tf)
        intent_ranking = _ranking(self.model.intent.labels, intent_p)
        category_ranking = _ranking(self.model.category.labels, category_p)
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


def _ranking(labels: tuple[str, ...], p: np.ndarray) -> list[dict[str, Any]]:
    order = np.argsort(-p)
    return [{"name": labels[i], "confidence": round(float(p[i]), 4)} for i in order]


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


# --- training ------------------------------------------------------------------------------------
def _docs_counts(texts: list[str], table: dict[int, int]) -> list[Counter[str]]:
    return [Counter(char_ngrams(normalize(t, table))) for t in texts]


def _matrix(docs: list[Counter[str]], vocab: dict[str, int], idf: np.ndarray):
    from scipy.sparse import csr_matrix

    rows, cols, vals = [], [], []
    for r, doc in enumerate(docs):
        items = [(vocab[g], 1.0 + math.log(c)) for g, c in doc.items() if g in vocab]
        if not items:
            continue
        ix = np.array([i for i, _ in items])
        v = np.array([x for _, x in items]) * idf[ix]
        n = np.sqrt((v * v).sum())
        if n > 0:
            v = v / n
        rows.extend([r] * len(ix))
        cols.extend(ix.tolist())
        vals.extend(v.tolist())
    return csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)), dtype=np.float64)


def _idf(docs: list[Counter[str]], vocab: dict[str, int]) -> np.ndarray:
    df = np.zeros(len(vocab))
    for doc in docs:
        for g in doc:
            i = vocab.get(g)
            if i is not None:
                df[i] += 1
    n = len(docs)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    idf[df == 0] = 0.0  # features this head never saw carry no weight (nor norm)
    return idf


def _fit_linear(X, y: list[str], labels: tuple[str, ...], sample_weight=None, seed: int = 0):
    """An ensemble of LinearSVC and a modified-Huber SGD (both linear, so they add into one W).
    Scores are standardised per model before averaging so neither dominates."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.svm import LinearSVC

    y_arr = np.array(y)
    models = [
        LinearSVC(C=0.5, class_weight="balanced", random_state=seed),
        SGDClassifier(loss="modified_huber", alpha=5e-5, class_weight="balanced", max_iter=50, tol=1e-4,
                      random_state=seed),
    ]
    W = np.zeros((X.shape[1], len(labels)))
    b = np.zeros(len(labels))
    for m in models:
        m.fit(X, y_arr, sample_weight=sample_weight)
        order = [list(m.classes_).index(lab) for lab in labels]
        coef = m.coef_[order].T
        inter = m.intercept_[order]
        scale = float(np.std(X @ coef + inter)) or 1.0
        W += coef / scale
        b += inter / scale
    return W / len(models), b / len(models)


def _fit_temperature(z: np.ndarray, y_idx: np.ndarray) -> float:
    """The softmax scale minimising held-out negative log-likelihood (a 1-D grid is enough)."""
    best, best_t = float("inf"), 1.0
    for t in np.geomspace(0.3, 30, 60):
        s = z * t
        s = s - s.max(1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(1, keepdims=True))
        nll = -logp[np.arange(len(y_idx)), y_idx].mean()
        if nll < best:
            best, best_t = nll, float(t)
    return best_t


def _train_head(docs, y, labels, vocab, sample_weight=None) -> LinearHead:
    idf = _idf(docs, vocab)
    X = _matrix(docs, vocab, idf)
    # temperature from a held-out fifth; then the final fit on everything
    rng = np.random.default_rng(0)
    mask = rng.random(len(y)) < 0.8
    ya = np.array(y)
    sw = None if sample_weight is None else np.asarray(sample_weight)
    if len(set(ya[mask])) == len(labels):
        W, b = _fit_linear(X[mask], list(ya[mask]), labels, None if sw is None else sw[mask])
        z = X[~mask] @ W + b
        y_idx = np.array([labels.index(v) for v in ya[~mask]])
        temperature = _fit_temperature(np.asarray(z), y_idx)
    else:
        temperature = 5.0
    W, b = _fit_linear(X, y, labels, sw)
    return LinearHead(labels, idf.astype(np.float64), np.ascontiguousarray(W, dtype=np.float32),
                      b.astype(np.float64), temperature)


def train(data_hash: str | None = None) -> Model:
    table = build_table()
    places = nd.load_places().surfaces()
    intent_ex = nd.load_intent_examples()
    cat_ex = nd.load_rasa_examples(nd.CATEGORIES_FILE)
    tipdm = nd.read_tipdm("dev")

    # intents: the YAML; short category examples and the real letters are reports too
    i_texts = [e.text for e in intent_ex]
    i_y = [e.label for e in intent_ex]
    i_w = [1.0] * len(i_texts)
    for e in cat_ex:
        i_texts.append(e.text)
        i_y.append("report_issue")
        i_w.append(1.0)
    for text, _ in tipdm:
        i_texts.append(text[:MAX_CLASSIFY_CHARS])
        i_y.append("report_issue")
        i_w.append(0.3)  # many long letters: let them teach the style, not swamp the short reports
    # categories: real letters (dev split only) + the short chat-style examples, weighted up
    c_texts = [t for t, _ in tipdm] + [e.text for e in cat_ex]
    c_y = [c for _, c in tipdm] + [e.label for e in cat_ex]
    c_w = [1.0] * len(tipdm) + [3.0 if tipdm else 1.0] * len(cat_ex)

    i_docs = _docs_counts(i_texts, table)
    c_docs = _docs_counts(c_texts, table)
    # vocabulary: everything from the hand-written examples; n-grams seen twice in the letters
    df: Counter[str] = Counter()
    for d in c_docs[: len(tipdm)]:
        df.update(d.keys())
    grams = {g for g, n in df.items() if n >= 2}
    for d in i_docs[: len(intent_ex) + len(cat_ex)]:
        grams.update(d.keys())
    for d in c_docs[len(tipdm) :]:
        grams.update(d.keys())
    vocab = {g: i for i, g in enumerate(sorted(grams))}

    intent_labels = tuple(lab for lab in INTENTS if lab in set(i_y))
    category_labels = tuple(lab for lab in CATEGORIES if lab in set(c_y))
    intent_head = _train_head(i_docs, i_y, intent_labels, vocab, i_w)
    category_head = _train_head(c_docs, c_y, category_labels, vocab, c_w)
    return Model(ENGINE_VERSION, data_hash or nd.training_hash(_code_version()), vocab, intent_head,
                 category_head, table, places,
                 {"intent_examples": len(intent_ex), "category_examples": len(cat_ex), "tipdm_dev": len(tipdm)})


# --- cache ---------------------------------------------------------------------------------------
_lock = threading.Lock()
_singleton: EmbeddedNLU | None = None


def cache_path(data_hash: str) -> Path:
    return Path(os.environ.get("ZTC_NLU_CACHE", CACHE_DIR)) / f"embedded-{data_hash}.pkl"


def _code_version() -> list[str]:
    # the featurisation code is part of the model: a change to it must invalidate the cache
    here = Path(__file__).resolve().parent
    return [ENGINE_VERSION] + [(here / f).read_text(encoding="utf-8") for f in ("text.py", "embedded.py")]


def load_or_train(force: bool = False) -> Model:
    data_hash = nd.training_hash(_code_version())
    path = cache_path(data_hash)
    if path.exists() and not force:
        try:
            with path.open("rb") as fh:
                model = pickle.load(fh)
            if isinstance(model, Model) and model.data_hash == data_hash:
                return model
        except Exception:  # a corrupt or stale cache is rebuilt, never fatal
            log.warning("NLU cache %s unreadable; retraining", path)
    started = time.perf_counter()
    model = train(data_hash)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)  # atomic: parallel workers never read half a file
    for old in path.parent.glob("embedded-*.pkl"):
        if old != path:
            old.unlink(missing_ok=True)
    log.info("embedded NLU trained in %.1f s (%s)", time.perf_counter() - started, model.trained_on)
    return model


def load_embedded() -> EmbeddedNLU:
    """The process-wide engine: loaded from the disk cache, trained first if the data changed."""
    global _singleton
    if _singleton is None:
        with _lock:
            if _singleton is None:
                _singleton = EmbeddedNLU(load_or_train())
    return _singleton


async def load_embedded_async() -> EmbeddedNLU:
    """For an event loop: a first training run takes seconds, so do it off the loop."""
    if _singleton is not None:
        return _singleton
    return await asyncio.to_thread(load_embedded)
