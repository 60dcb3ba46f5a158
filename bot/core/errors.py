"""Errors of the domain."""
from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain was broken. `key` names a user-facing text in config/texts/*.yaml."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key, params)
        self.key = key
        self.params = params
