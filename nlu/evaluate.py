"""Evaluation shared by `zhitongche nlu eval` and bench/bench_nlu.py: per-label precision/recall/F1,
macro-F1, confusion matrix, latency percentiles."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    name: str
    labels: list[str]  # gold labels (macro-F1 averages over these)
    per_label: dict[str, dict[str, float]]
    macro_f1: float
    accuracy: float
    n: int
    confusion: dict[str, Counter[str]]
    latency_ms: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "n": self.n, "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "per_label": {k: {m: round(v, 4) for m, v in d.items()} for k, d in self.per_label.items()},
            "confusion": {k: dict(v) for k, v in self.confusion.items()},
            "latency_ms": {k: round(v, 4) for k, v in self.latency_ms.items()}, **self.extra,
        }


def score(name: str, gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None) -> Report:
    """Macro-F1 over the gold label set: a prediction outside it (e.g. 政法 on a 7-class test) counts
    as a miss for recall and is not rewarded anywhere."""
    labels = list(labels) if labels else sorted(set(gold))
    confusion: dict[str, Counter[str]] = {lab: Counter() for lab in labels}
    for g, p in zip(gold, pred):
        confusion.setdefault(g, Counter())[p] += 1
    per: dict[str, dict[str, float]] = {}
    for lab in labels:
        tp = sum(1 for g, p in zip(gold, pred) if g == lab and p == lab)
        n_pred = sum(1 for p in pred if p == lab)
        n_gold = sum(1 for g in gold if g == lab)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[lab] = {"precision": prec, "recall": rec, "f1": f1, "support": float(n_gold)}
    macro = sum(d["f1"] for d in per.values()) / len(per) if per else 0.0
    acc = sum(1 for g, p in zip(gold, pred) if g == p) / len(gold) if gold else 0.0
    return Report(name, labels, per, macro, acc, len(gold), confusion)


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    xs = sorted(samples_s)
    if not xs:
        return {}

    def pct(q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000

    return {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": xs[-1] * 1000}


def timed(parse: Callable[[str], dict[str, Any]], texts: Sequence[str]) -> tuple[list[dict[str, Any]], list[float]]:
    out, lat = [], []
    for t in texts:
        t0 = time.perf_counter()
        out.append(parse(t))
        lat.append(time.perf_counter() - t0)
    return out, lat


def format_report(rep: Report) -> str:
    lines = [f"== {rep.name}: n={rep.n} accuracy={rep.accuracy:.4f} macro-F1={rep.macro_f1:.4f}"]
    lines.append(f"{'label':<22}{'P':>8}{'R':>8}{'F1':>8}{'n':>6}")
    for lab, d in rep.per_label.items():
        lines.append(f"{lab:<22}{d['precision']:>8.3f}{d['recall']:>8.3f}{d['f1']:>8.3f}{int(d['support']):>6}")
    cols = sorted({p for c in rep.confusion.values() for p in c}, key=lambda x: (x not in rep.labels, x))
    lines.append("confusion (rows gold, columns predicted): " + " | ".join(cols))
    for g in rep.labels:
        lines.append(f"  {g:<20} " + " ".join(f"{rep.confusion[g][p]:>4}" for p in cols))
    if rep.latency_ms:
        lines.append("latency ms: " + " ".join(f"{k}={v:.3f}" for k, v in rep.latency_ms.items()))
    for k, v in rep.extra.items():
        lines.append(f"{k}: {v}")
    return "\n".join(lines)
