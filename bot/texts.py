"""User-facing Chinese texts, kept as data in config/texts/*.yaml (one file per area)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from bot.settings import CONFIG_DIR

TEXTS_DIR = CONFIG_DIR / "texts"


class Texts:
    def __init__(self, entries: dict[str, Any]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, directory: Path = TEXTS_DIR) -> Texts:
        entries: dict[str, Any] = {}
        for path in sorted(directory.glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            duplicated = entries.keys() & data.keys()
            if duplicated:
                raise ValueError(f"{path.name}: text keys defined twice: {sorted(duplicated)}")
            entries.update(data)
        return cls(entries)

    def get(self, key: str, **params: object) -> str:
        """The text for `key` with {placeholders} filled in. A missing key is a bug: KeyError."""
        template = self._entries[key]
        return str(template).format(**params) if params else str(template)

    def raw(self, key: str) -> Any:
        """Lists and maps (keyword lists, menus) as they are written."""
        return self._entries[key]

    def __contains__(self, key: str) -> bool:
        return key in self._entries


@lru_cache(maxsize=1)
def default_texts() -> Texts:
    return Texts.load()
