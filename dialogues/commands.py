"""Deterministic citizen commands: #1024 / 编号1024 and rating answers (我的诉求 and 帮助 are
word lists in dialogues.words; 绑定 belongs to handlers.deputies).

These never go through the classifier: they are exact forms a citizen types or taps."""
from __future__ import annotations

import re

from dialogues.words import Words, bare, fold, normalize

_NOTE = re.compile(r"^(?:#|编号)\s*(\d{1,9})(?!\d)\s*号?[\s:：,，、.。]*(\S.*)$", re.S)
_TICKET = re.compile(r"^(?:查询|查看|查)?\s*(?:#|编号|诉求|工单)\s*(\d{1,9})\s*号?$|^(\d{1,9})\s*号$")
# a score with an optional comment after a space or punctuation: "5", "5分", "4 处理很及时"
_SCORE = re.compile(r"^([1-5])\s*(?:分|星|颗星)?(?:$|[\s,，。.!！:：;；、~～]+(.*)$)", re.S)
_SEPARATOR = r"(?:$|[\s,，。.!！:：;；、~～]+(.*)$)"
_ANY_SCORE = re.compile(r"(?<!\d)([1-5])\s*(?:分|星|颗星)(?!\d)")


def ticket_number(text: str) -> int | None:
    """1024 for '#1024', '＃1024', '编号1024', '1024号'; None otherwise."""
    match = _TICKET.match(normalize(text))
    if not match:
        return None
    return int(match.group(1) or match.group(2))


def ticket_note(text: str) -> tuple[int, str] | None:
    """(1024, '路灯还是不亮') for '#1024 路灯还是不亮': a citizen's words for their ticket's deputy,
    as written."""
    text = text.strip()
    match = _NOTE.match(fold(text))
    if not match or ticket_number(text) is not None:
        return None
    return int(match.group(1)), text[match.start(2):].strip()


def parse_rating(text: str, words: Words) -> tuple[int, str] | None:
    """(score, comment) when the whole message is a rating: '5', '4 处理很及时', '满意', '五星，谢谢'.
    The comment is kept as the citizen wrote it ('很及时，谢谢代表')."""
    text = text.strip()
    folded = fold(text)
    match = _SCORE.match(folded)
    if match:
        return int(match.group(1)), _as_written(text, match, 2)
    for word, score in words.rating:
        if folded.startswith(word):
            rest = re.compile(_SEPARATOR, re.S).match(folded, len(word))
            if rest:
                return score, _as_written(text, rest, 1)
    return None


def _as_written(text: str, match: re.Match[str], group: int) -> str:
    return text[match.start(group):match.end(group)].strip() if match.group(group) else ""


def find_rating(text: str, words: Words) -> int | None:
    """A score named anywhere in a message the NLU took for a rating ('很满意谢谢代表')."""
    text = normalize(text)
    match = _ANY_SCORE.search(text)
    if match:
        return int(match.group(1))
    squeezed = bare(text)
    if squeezed in {"1", "2", "3", "4", "5"}:
        return int(squeezed)
    for word, score in words.rating:
        if word in text:
            return score
    return None
