"""Cross-validation of the category head on the dev split only: `python -m nlu.tune [nb_weight ...]`.

This is how the category hyper-parameters in nlu/embedded.py are chosen; the test split is never
read here (it is scored once by `zhitongche nlu eval`)."""
from __future__ import annotations

import sys

import numpy as np

from bot.domain import CATEGORIES
from nlu import data as nd
from nlu import embedded as emb
from nlu.evaluate import score
from nlu.text import build_table


def cv_categories(nb_weight: float = emb.CATEGORY_NB_WEIGHT, example_weight: float = emb.CATEGORY_EXAMPLE_WEIGHT,
                  folds: int = 5, seed: int = 0) -> float:
    from sklearn.model_selection import StratifiedKFold

    table = build_table()
    dev = nd.read_tipdm("dev")
    cat_ex = nd.load_rasa_examples(nd.CATEGORIES_FILE)
    docs = emb._docs_counts([t for t, _ in dev], table)
    ex_docs = emb._docs_counts([e.text for e in cat_ex], table)
    y = np.array([c for _, c in dev])
    pred = np.empty(len(y), dtype=object)
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        grams = emb.category_vocab([docs[i] for i in tr], ex_docs)
        vocab = {g: i for i, g in enumerate(sorted(grams))}
        tr_docs = [docs[i] for i in tr] + ex_docs
        tr_y = list(y[tr]) + [e.label for e in cat_ex]
        labels = tuple(lab for lab in CATEGORIES if lab in set(tr_y))
        w = [1.0] * len(tr) + [example_weight] * len(ex_docs)
        head = emb._fit_head(tr_docs, tr_y, labels, vocab, w, nb_weight)
        z = emb.head_logits(head, [docs[i] for i in te], vocab)
        pred[te] = [labels[k] for k in z.argmax(1)]
    rep = score("cv", list(y), list(pred))
    print(f"nb_weight={nb_weight} example_weight={example_weight}: macro-F1 {rep.macro_f1:.4f} "
          + " ".join(f"{k}={v['f1']:.2f}" for k, v in rep.per_label.items()), flush=True)
    return rep.macro_f1


if __name__ == "__main__":
    grid = [tuple(map(float, a.split(","))) for a in sys.argv[1:]] or [(emb.CATEGORY_NB_WEIGHT, emb.CATEGORY_EXAMPLE_WEIGHT)]
    for nb, ex in grid:
        cv_categories(nb, ex)
