"""The trained model's shape: linear heads over one shared vocabulary of character n-grams and words,
as plain numpy arrays (what nlu/model_store.py saves and nlu/embedded.py scores with)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

ENGINE_VERSION = "emb-4"
INTENTS = ("greet", "goodbye", "thanks", "affirm", "deny", "cancel", "report_issue", "check_status",
           "ask_schedule", "ask_deputy", "ask_scope", "petition", "emergency", "legislative_opinion",
           "rate", "out_of_scope")


@dataclass
class Part:
    """One linear model over (a subset of) the shared vocabulary: its own TF-IDF weighting (idf is 0
    for features it does not use), L2-normalised, times `weights`; `log_softmax` for a naive Bayes
    part, whose per-text normalisation is part of its score."""

    idf: np.ndarray  # per vocabulary index
    weights: np.ndarray  # (n_vocab, n_labels) float32, row per feature: a gather is contiguous
    log_softmax: bool = False
    scale: float = 1.0


@dataclass
class LinearHead:
    """softmax(T * (sum of the parts' scores + b)) over `labels`."""

    labels: tuple[str, ...]
    parts: list[Part]
    bias: np.ndarray
    temperature: float

    def logits(self, idx: np.ndarray, tf: np.ndarray) -> np.ndarray:
        z = self.bias.copy()
        for part in self.parts:
            w = tf * part.idf[idx]
            norm = math.sqrt(float(w @ w))
            if norm == 0.0:
                continue
            s = (w / norm) @ part.weights[idx]
            if part.log_softmax:
                s = s - s.max()
                s = (s - math.log(float(np.exp(s).sum()))) * part.scale
            z += s
        return z

    def scores(self, idx: np.ndarray, tf: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
        z = self.logits(idx, tf) * self.temperature
        if shift is not None:
            z = z + shift
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
    civic: frozenset[str] = frozenset()  # features that mark a civic matter (see civic_lexicon)
    sources: dict[str, str | None] = field(default_factory=dict)  # sha256 of each training source


def head_logits(head: LinearHead, docs: list[Counter[str]], vocab: dict[str, int]) -> np.ndarray:
    out = np.zeros((len(docs), len(head.labels)))
    for r, doc in enumerate(docs):
        pairs = [(vocab[g], c) for g, c in doc.items() if g in vocab]
        if pairs:
            idx = np.array([i for i, _ in pairs], dtype=np.int64)
            tf = 1.0 + np.log(np.array([c for _, c in pairs], dtype=np.float64))
            out[r] = head.logits(idx, tf)
        else:
            out[r] = head.bias
    return out
