"""Hyper-parameter selection without the evaluation data.

    python -m nlu.tune [nb_weight,example_weight ...]   # category head: 5-fold CV on tipdm split=dev
    python -m nlu.tune intents                          # intent head + civic prior: 5-fold CV on the
                                                        # training YAML and the written off-topic
                                                        # development set nlu/dev/offtopic_dev.txt

This is how the hyper-parameters in nlu/training.py and nlu/civic.py are chosen; the test split, smp2017 and
nlu/test_intents.yml are never read here (they are scored by `zhitongche nlu eval`)."""
from __future__ import annotations

import sys
from collections import Counter

import numpy as np

from bot.core.tickets import CATEGORIES
from nlu import data as nd
from nlu import training as emb
from nlu.civic import CIVIC_LABELS, civic_lexicon
from nlu.embedded import FALLBACK_INTENT, INTENT_THRESHOLD
from nlu.linear import INTENTS, head_logits
from nlu import text
from nlu.evaluate import score
from nlu.text import MAX_CLASSIFY_CHARS, build_table, features, normalize


def cv_categories(nb_weight: float = emb.CATEGORY_NB_WEIGHT, example_weight: float = emb.CATEGORY_EXAMPLE_WEIGHT,
                  folds: int = 5, seeds: tuple[int, ...] = (0, 1, 2, 3), c: float = emb.CATEGORY_C,
                  taxonomy_weight: float = emb.CATEGORY_TAXONOMY_WEIGHT) -> float:
    """Letters of split=dev and the hand-written category examples are held out fold by fold
    together (the taxonomy always trains); macro-F1 of each, averaged over `seeds` (one seed's folds
    swing ±0.005)."""
    from sklearn.model_selection import StratifiedKFold

    table = build_table()
    dev = nd.read_tipdm("dev")
    cat_ex = nd.load_rasa_examples(nd.CATEGORIES_FILE)
    taxonomy = nd.read_taxonomy(CATEGORIES)
    docs = emb._docs_counts([t for t, _ in dev], table)
    ex_docs = emb._docs_counts([e.text for e in cat_ex], table)
    tax_docs = emb._docs_counts([t for t, _ in taxonomy], table)
    y = np.array([c for _, c in dev])
    ex_y = np.array([e.label for e in cat_ex])
    letters_f1, short_f1 = [], []
    for seed in seeds:
        pred = np.empty(len(y), dtype=object)
        ex_pred = np.empty(len(ex_y), dtype=object)
        split = StratifiedKFold(folds, shuffle=True, random_state=seed).split
        for (tr, te), (etr, ete) in zip(split(np.zeros(len(y)), y), split(np.zeros(len(ex_y)), ex_y)):
            extra = [ex_docs[i] for i in etr] + tax_docs
            grams = emb.category_vocab([docs[i] for i in tr], extra)
            vocab = {g: i for i, g in enumerate(sorted(grams))}
            tr_y = list(y[tr]) + list(ex_y[etr]) + [c for _, c in taxonomy]
            labels = tuple(lab for lab in CATEGORIES if lab in set(tr_y))
            w = [1.0] * len(tr) + [example_weight] * len(etr) + [taxonomy_weight] * len(tax_docs)
            head = emb._fit_head([docs[i] for i in tr] + extra, tr_y, labels, vocab, w, nb_weight, c)
            pred[te] = [labels[k] for k in head_logits(head, [docs[i] for i in te], vocab).argmax(1)]
            ex_pred[ete] = [labels[k] for k in head_logits(head, [ex_docs[i] for i in ete], vocab).argmax(1)]
        letters_f1.append(score("cv", list(y), list(pred)).macro_f1)
        short_f1.append(score("cv", list(ex_y), list(ex_pred)).macro_f1)
    print(f"nb_weight={nb_weight} example_weight={example_weight} taxonomy_weight={taxonomy_weight} C={c} "
          f"chars={text.MAX_CLASSIFY_CHARS} words={text.MAX_WORD_CHARS} title={text.TITLE_CHARS}: "
          f"letters macro-F1 {np.mean(letters_f1):.4f} ({' '.join(f'{f:.4f}' for f in letters_f1)}), "
          f"short examples macro-F1 {np.mean(short_f1):.4f}", flush=True)
    return float(np.mean(letters_f1))


DEV_OFFTOPIC = nd.NLU_DIR / "dev" / "offtopic_dev.txt"


def read_dev_offtopic() -> list[str]:
    lines = DEV_OFFTOPIC.read_text(encoding="utf-8").splitlines() if DEV_OFFTOPIC.exists() else []
    return [t.strip() for t in lines if t.strip() and not t.startswith("#")]


def _intent_fit(texts_docs, y, w, n_hand, vocab_extra_docs):
    """Vocabulary, intent head and civic lexicon as emb.train builds them, on the given docs."""
    grams = set()
    df: Counter = Counter()
    for d in vocab_extra_docs:
        df.update(d.keys())
    grams = {g for g, n in df.items() if n >= 2}
    for d in texts_docs[:n_hand]:
        grams.update(d.keys())
    vocab = {g: i for i, g in enumerate(sorted(grams))}
    labels = tuple(lab for lab in INTENTS if lab in set(y))
    head = emb._train_head(texts_docs, y, labels, vocab, w)
    return vocab, labels, head


def _predict(head, labels, vocab, docs, norms, civic, prior, max_chars, oos_boost=False):
    z = head_logits(head, docs, vocab) * head.temperature
    ri = labels.index("report_issue")
    oi = labels.index("out_of_scope")
    out = []
    for r, (d, norm) in enumerate(zip(docs, norms)):
        zr = z[r].copy()
        if prior > 0 and len(norm.strip()) <= max_chars and civic.isdisjoint(d):
            zr[ri] -= prior
            if oos_boost:
                zr[oi] += prior
        p = np.exp(zr - zr.max())
        p /= p.sum()
        k = int(p.argmax())
        out.append(labels[k] if p[k] >= INTENT_THRESHOLD else FALLBACK_INTENT)
    return out


def cv_intents(grid=((0.0, 20), (0.75, 20), (1.0, 20), (1.5, 20), (2.0, 20), (1.5, 12), (1.5, 30)),
               lexicons=((2, 2.0), (2, 3.0)), folds: int = 5, seed: int = 0) -> None:
    """5-fold CV over the hand-written intent examples (category examples and dev letters always
    train, as report_issue), plus the rate of the written off-topic dev set read as report_issue
    by a model trained on everything."""
    from sklearn.model_selection import StratifiedKFold

    table = build_table()
    intent_ex = nd.load_intent_examples()
    cat_ex = nd.load_rasa_examples(nd.CATEGORIES_FILE)
    letters = [t[:MAX_CLASSIFY_CHARS] for t, _ in nd.read_tipdm("dev")]
    ex_norm = [normalize(e.text, table) for e in intent_ex]
    ex_docs = [Counter(features(n, title=False)) for n in ex_norm]
    cat_docs = emb._docs_counts([e.text for e in cat_ex], table, title=False)
    let_docs = emb._docs_counts(letters, table, title=False)
    y = np.array([e.label for e in intent_ex])
    dev_texts = read_dev_offtopic()
    dev_norm = [normalize(t, table) for t in dev_texts]
    dev_docs = [Counter(features(n, title=False)) for n in dev_norm]

    def fit(idx):
        docs = [ex_docs[i] for i in idx] + cat_docs + let_docs
        yy = list(y[idx]) + ["report_issue"] * (len(cat_docs) + len(let_docs))
        w = [1.0] * (len(idx) + len(cat_docs)) + [emb.TIPDM_INTENT_WEIGHT] * len(let_docs)
        vocab, labels, head = _intent_fit(docs, yy, w, len(idx) + len(cat_docs), let_docs)
        hand = docs[: len(idx) + len(cat_docs)]
        hand_y = yy[: len(idx) + len(cat_docs)]
        lex = {(m, r): civic_lexicon([d for d, t in zip(hand, hand_y) if t in CIVIC_LABELS],
                                         [d for d, t in zip(hand, hand_y) if t == "out_of_scope"], m, r)
               for m, r in lexicons}
        return vocab, labels, head, lex

    preds = {(lx, g): np.empty(len(y), dtype=object) for lx in lexicons for g in grid}
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        vocab, labels, head, lex = fit(tr)
        for lx in lexicons:
            for prior, mc in grid:
                preds[(lx, (prior, mc))][te] = _predict(head, labels, vocab, [ex_docs[i] for i in te],
                                                         [ex_norm[i] for i in te], lex[lx], prior, mc)
    vocab, labels, head, lex = fit(np.arange(len(y)))
    is_rep = y == "report_issue"
    is_oos = y == "out_of_scope"
    for lx in lexicons:
        for prior, mc in grid:
            p = preds[(lx, (prior, mc))]
            dev_p = _predict(head, labels, vocab, dev_docs, dev_norm, lex[lx], prior, mc)
            dev_rate = sum(q == "report_issue" for q in dev_p) / max(len(dev_p), 1)
            print(f"lexicon(min_df={lx[0]}, ratio={lx[1]}) |lex|={len(lex[lx])} prior={prior} max_chars={mc}: "
                  f"CV acc {np.mean(p == y):.4f}  report recall {np.mean(p[is_rep] == 'report_issue'):.4f}  "
                  f"oos→report {np.mean(p[is_oos] == 'report_issue'):.4f}  "
                  f"dev off-topic→report {dev_rate:.2%} of {len(dev_p)} "
                  f"{[t for t, q in zip(dev_texts, dev_p) if q == 'report_issue'][:8]}", flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["intents"]:
        cv_intents()
        sys.exit(0)
    grid = [tuple(map(float, a.split(","))) for a in sys.argv[1:]] or [(emb.CATEGORY_NB_WEIGHT, emb.CATEGORY_EXAMPLE_WEIGHT)]
    for nb, ex in grid:
        cv_categories(nb, ex)
