"""Text normalisation that keeps every character at its index (entity offsets point into the
original text) and the features both classifiers are trained and scored on: character 1-3-grams
and jieba words (prefixed "w:") of a bounded prefix of the text, and the opening characters marked
as a title ("t:")."""
from __future__ import annotations

from collections import Counter
from functools import lru_cache

MAX_CLASSIFY_CHARS = 300  # long letters: the title and first paragraph decide (bounded parse time)
WORD_PREFIX = "w:"
MAX_WORD_CHARS = 1200  # words reach further into a letter (naive Bayes on words gains from the body)
# the opening of a letter, its subject line, counts again (see title_features). CV on dev (4 seeds):
# letters macro-F1 +0.001 to +0.004 alone, +0.003 to +0.005 beside the taxonomy examples; 16 or 32
# characters or counting it twice no better
TITLE_CHARS = 24
TITLE_PREFIX = "t:"


@lru_cache(maxsize=1)
def _table() -> dict[int, int]:
    table: dict[int, int] = {}
    # full-width ASCII → half-width, ideographic space → space
    for code in range(0xFF01, 0xFF5F):
        table[code] = code - 0xFEE0
    table[0x3000] = 0x20
    for code in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00A0):  # invisible: treat as space
        table[code] = 0x20
    for src, dst in zip("，。！？：；（）【】「」『』、“”‘’～", ",.!?:;()[][][],\"\"''~"):
        table[ord(src)] = ord(dst)
    table.update(_traditional_to_simplified())
    return table


_KEEP = set("著乾藉")  # also everyday simplified characters (著名, 乾隆, 狼藉)


def _traditional_to_simplified() -> dict[int, int]:
    """Character-level map from hanziconv's table, keeping only pairs where the simplified form is
    the commoner character (the raw table also maps 呼→唿, 猛→勐 and other rare variants)."""
    try:
        import jieba
        from hanziconv.charmap import simplified_charmap, traditional_charmap
    except ImportError:  # degrade to no conversion rather than fail
        return {}
    jieba.setLogLevel(60)
    jieba.initialize()
    char_freq: Counter[str] = Counter()
    for word, freq in jieba.dt.FREQ.items():
        if freq:
            for ch in word:
                char_freq[ch] += freq
    mapping: dict[int, int] = {}
    for trad, simp in zip(traditional_charmap, simplified_charmap):
        if trad != simp and trad not in _KEEP and char_freq[simp] > char_freq[trad]:
            mapping[ord(trad)] = ord(simp)
    return mapping


def build_table() -> dict[int, int]:
    return dict(_table())


def normalize(text: str, table: dict[int, int] | None = None) -> str:
    """Same length as `text`: lower case, half-width, simplified."""
    out = text.translate(table if table is not None else _table())
    lowered = out.lower()
    if len(lowered) == len(out):
        return lowered
    # a few characters lower-case to two (İ): keep the original there so offsets stay valid
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in out)


def char_ngrams(norm: str) -> list[str]:
    """1-3 grams over the text with ^/$ boundaries, whitespace squeezed; for classification only."""
    s = "^" + " ".join(norm[:MAX_CLASSIFY_CHARS].split()) + "$"
    n = len(s)
    grams = [s[i] for i in range(1, n - 1)]
    grams += [s[i : i + 2] for i in range(n - 1)]
    grams += [s[i : i + 3] for i in range(n - 2)]
    return grams


_jieba_cut = None


def _cutter():
    global _jieba_cut
    if _jieba_cut is None:
        import jieba

        jieba.setLogLevel(60)
        jieba.initialize()
        _jieba_cut = jieba.dt.cut
    return _jieba_cut


def words(norm: str) -> list[str]:
    """jieba words (dictionary only, no HMM: deterministic and ~3x faster) of the classified prefix."""
    s = " ".join(norm[:MAX_WORD_CHARS].split())
    return [WORD_PREFIX + w for w in _cutter()(s, HMM=False) if w != " "]


def title_features(norm: str, text_words: list[str] | None = None) -> list[str]:
    """Character 2-3-grams and words of the opening TITLE_CHARS characters, marked: a letter starts
    with its subject line (留言主题), which names the matter more plainly than the body. For a text
    no longer than that, the words of the whole text are the title's (no second cut)."""
    t = "".join(norm[:TITLE_CHARS].split())
    grams = [TITLE_PREFIX + t[i : i + 2] for i in range(len(t) - 1)]
    grams += [TITLE_PREFIX + t[i : i + 3] for i in range(len(t) - 2)]
    if text_words is None or t != norm:
        text_words = [WORD_PREFIX + w for w in _cutter()(t, HMM=False)]
    return grams + [TITLE_PREFIX + w[len(WORD_PREFIX) :] for w in text_words]


def features(norm: str, title: bool = True) -> list[str]:
    """Everything both heads are scored on; `title=False` for the intent head's training texts (its
    weights for the title features stay zero: the category head alone uses them)."""
    ws = words(norm)
    if not title:
        return char_ngrams(norm) + ws
    return char_ngrams(norm) + ws + title_features(norm, ws)
