"""The Chinese words the dialogues recognise (yes/no/cancel/skip, rating words…), read from the
texts files so wording can change without code. Pure: no I/O once built."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.texts import Texts

# Punctuation, spaces and emoji-ish symbols that carry no meaning in a one-word answer.
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """Full-width to half-width, lower case, trimmed: 'ＯＫ！' and 'ok' compare equal."""
    return unicodedata.normalize("NFKC", text or "").strip().lower()


def fold_width(text: str) -> str:
    """Full-width ASCII forms (＃, digits, letters, ：，) and the ideographic space to ASCII, one
    character for one and nothing else: match positions in the folded text point at the same
    words in the original, so a deputy's words can be passed on exactly as written."""
    return "".join(
        chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else " " if c == "\u3000" else c for c in text
    )


def fold(text: str) -> str:
    """fold_width and lower case, still one character for one: match on the folded text, then
    take the citizen's words from the original at the same positions (stored as written)."""
    return "".join(low if len(low := c.lower()) == 1 else c for c in fold_width(text))


def bare(text: str) -> str:
    """The text without punctuation or spaces, for matching one-word answers like '是的！'."""
    return _NOISE.sub("", normalize(text))


@dataclass(frozen=True)
class Words:
    yes: frozenset[str]
    no: frozenset[str]
    cancel: frozenset[str]
    skip: frozenset[str]
    edit: frozenset[str]
    no_details: frozenset[str]
    private: tuple[str, ...]  # inside a phone answer: the number is for staff only (只给工作人员)
    filler: tuple[str, ...]  # words of a bare request like 我要反映个问题 (no content yet)
    edit_slots: dict[str, str]  # answer to "which part?" -> slot name
    rating: tuple[tuple[str, int], ...]  # longest first, so 很不满意 wins over 不满意 and 满意
    my_tickets: frozenset[str]
    help: frozenset[str]

    @classmethod
    def from_texts(cls, texts: Texts) -> Words:
        raw = texts.raw("form_words")
        citizen = texts.raw("citizen_words")
        rating = citizen["rating"]
        return cls(
            yes=frozenset(raw["yes"]),
            no=frozenset(raw["no"]),
            cancel=frozenset(raw["cancel"]),
            skip=frozenset(raw["skip"]),
            edit=frozenset(raw["edit"]),
            no_details=frozenset(raw["no_details"]),
            private=tuple(raw["private"]),
            filler=tuple(sorted(raw["filler"], key=len, reverse=True)),
            edit_slots={str(k): str(v) for k, v in raw["edit_slots"].items()},
            rating=tuple(sorted(((str(k), int(v)) for k, v in rating.items()), key=lambda kv: -len(kv[0]))),
            my_tickets=frozenset(citizen["my_tickets"]),
            help=frozenset(citizen["help"]),
        )

    def is_yes(self, text: str) -> bool:
        return bare(text) in self.yes

    def is_no(self, text: str) -> bool:
        return bare(text) in self.no

    def is_cancel(self, text: str) -> bool:
        return bare(text) in self.cancel

    def is_skip(self, text: str) -> bool:
        return bare(text) in self.skip

    def is_edit(self, text: str) -> bool:
        return bare(text) in self.edit

    def is_my_tickets(self, text: str) -> bool:
        return bare(text) in self.my_tickets

    def is_help(self, text: str) -> bool:
        return bare(text) in self.help or normalize(text) in {"?", "？"}

    def is_private(self, text: str) -> bool:
        squeezed = bare(text)
        return any(word in squeezed for word in self.private)

    def is_no_details(self, text: str) -> bool:
        return bare(text) in self.no_details or bare(text) in self.skip

    def has_content(self, text: str) -> bool:
        """False for a bare request such as '我要反映一个问题' that says nothing about the problem."""
        rest = bare(text)
        for word in self.filler:
            rest = rest.replace(word, "")
        return len(rest) >= 2
