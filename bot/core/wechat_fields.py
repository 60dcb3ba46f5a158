"""Typed fields of template messages and 订阅通知, to WeChat's rules since 2023.

A field's key names its type (`thing3`, `character_string1`, `time5`…), as WeChat's category
templates do; template messages no longer show `first` and `remark`, and cut each value at 20
characters. Values are fitted when a message is built (`fit`) and checked before it is sent
(`problems`), so WeChat never cuts or refuses what we send."""
from __future__ import annotations

import re
from dataclasses import dataclass

TEMPLATE_VALUE_MAX = 20  # template messages: each keyword value, whatever its type


@dataclass(frozen=True)
class FieldRule:
    max_chars: int
    pattern: re.Pattern[str] | None = None  # the whole value must match


_HAN = r"\u3400-\u4dbf\u4e00-\u9fff"
RULES: dict[str, FieldRule] = {
    "thing": FieldRule(20),  # text: Chinese, letters, digits, symbols
    "phrase": FieldRule(5, re.compile(rf"[{_HAN}]+")),  # Chinese characters only
    "number": FieldRule(32, re.compile(r"\d+(?:\.\d+)?")),
    "character_string": FieldRule(32, re.compile(r"[0-9A-Za-z_#\-.:/@]+")),  # letters, digits, symbols
    "letter": FieldRule(32, re.compile(r"[A-Za-z]+")),
    "time": FieldRule(32, re.compile(r"\d{4}年\d{1,2}月\d{1,2}日(?: \d{1,2}:\d{2})?|\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}(?::\d{2})?)?")),
    "date": FieldRule(32, re.compile(r"\d{4}年\d{1,2}月\d{1,2}日|\d{4}-\d{2}-\d{2}")),
    "name": FieldRule(10),  # a person's name: 10 characters (Chinese) or 20 letters
    "phone_number": FieldRule(17, re.compile(r"\+?[\d\- ]+")),
    "amount": FieldRule(32, re.compile(r"\d+(?:\.\d{1,2})?元?")),
}
_KEY = re.compile(r"([a-z_]+?)(\d+)")


def field_type(key: str) -> str | None:
    """`thing3` → "thing"; None for a key of no known type (first, keyword1…)."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match and match.group(1) in RULES else None


def fit(key: str, value: str) -> str:
    """The value made to fit its field: one line, at most the type's length (thing/name end in
    "…" when cut). Values of a strict pattern are only trimmed; `problems` reports a bad one."""
    value = " ".join(str(value).split())
    kind = field_type(key)
    limit = RULES[kind].max_chars if kind else TEMPLATE_VALUE_MAX
    limit = min(limit, TEMPLATE_VALUE_MAX)
    if len(value) <= limit:
        return value
    if kind in (None, "thing", "name"):
        return value[: limit - 1] + "…"
    return value[:limit]


def fit_all(data: dict[str, str]) -> dict[str, str]:
    return {key: fit(key, value) for key, value in data.items()}


def problems(data: dict[str, str], *, template: bool = True) -> list[str]:
    """Why WeChat would cut or refuse these fields ([] = fine). `template`: the template-message
    rule too (≤ 20 characters each, no first/remark)."""
    found = []
    for key, value in data.items():
        if template and key in ("first", "remark"):
            found.append(f"{key}: not shown since 2023")
            continue
        kind = field_type(key)
        if kind is None:
            found.append(f"{key}: unknown field type")
            continue
        rule = RULES[kind]
        if not value:
            found.append(f"{key}: empty")
        elif len(value) > rule.max_chars or (template and len(value) > TEMPLATE_VALUE_MAX):
            found.append(f"{key}: {len(value)} characters, at most {min(rule.max_chars, TEMPLATE_VALUE_MAX) if template else rule.max_chars}")
        elif "\n" in value:
            found.append(f"{key}: line break")
        elif rule.pattern is not None and not rule.pattern.fullmatch(value):
            found.append(f"{key}: not a valid {kind}")
    return found
