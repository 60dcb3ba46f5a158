"""Tables of the in-memory store: committed rows, and one unit of work's staged view of them."""
from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_DELETED: Any = object()


class Table(Generic[K, V]):
    """Committed rows of one table."""

    def __init__(self) -> None:
        self.rows: dict[K, V] = {}


class Staged(Generic[K, V]):
    """One unit of work's view of a table: its own staged writes over the committed rows."""

    def __init__(self, table: Table[K, V]) -> None:
        self._table = table
        self._writes: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        value = self._writes.get(key, self._table.rows.get(key))
        return None if value is None or value is _DELETED else copy.deepcopy(value)

    def put(self, key: K, value: V) -> None:
        self._writes[key] = copy.deepcopy(value)

    def delete(self, key: K) -> None:
        self._writes[key] = _DELETED

    def values(self) -> Iterator[V]:
        merged = {**self._table.rows, **self._writes}
        for value in merged.values():
            if value is not _DELETED:
                yield copy.deepcopy(value)

    def commit(self) -> None:
        for key, value in self._writes.items():
            if value is _DELETED:
                self._table.rows.pop(key, None)
            else:
                self._table.rows[key] = value
        self._writes.clear()

    def rollback(self) -> None:
        self._writes.clear()
