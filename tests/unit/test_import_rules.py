"""The layers' import rules, read from the source (ast), so they stay true:
- bot/core imports only the standard library and bot.core itself: no other project package,
  no infrastructure;
- the use cases (handlers/) and dialogues (dialogues/) import no storage and no infrastructure
  library: they talk through bot.core.ports."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRASTRUCTURE = ("sqlalchemy", "alembic", "asyncpg", "aiosqlite", "aiohttp", "redis", "wechatpy")
NOT_FOR_USE_CASES = ("storage", *INFRASTRUCTURE)


def imported_modules(source: str, module: str) -> set[str]:
    """Every module `source` imports, anywhere in it (functions and TYPE_CHECKING blocks too),
    relative imports resolved against `module` (the dotted name of the file)."""
    found: set[str] = set()
    package = module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                if node.module:
                    found.add(f"{base}.{node.module}")
                else:  # `from . import keys`: the names are modules
                    found.update(f"{base}.{alias.name}" for alias in node.names)
            else:
                found.add(node.module or "")
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def core_violations(imports: set[str]) -> list[str]:
    return sorted(n for n in imports
                  if not _within(n, ("bot.core",)) and n.partition(".")[0] not in sys.stdlib_module_names
                  and n != "__future__")


def use_case_violations(imports: set[str]) -> list[str]:
    return sorted(n for n in imports if _within(n, NOT_FOR_USE_CASES))


def _sources(*folders: str) -> list[tuple[str, str, str]]:
    files = [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]
    assert files, folders
    return [(str(p.relative_to(ROOT)), ".".join(p.relative_to(ROOT).with_suffix("").parts),
             p.read_text(encoding="utf-8")) for p in files]


def test_the_core_imports_nothing_but_itself_and_the_standard_library() -> None:
    problems = {path: bad for path, module, source in _sources("bot/core")
                if (bad := core_violations(imported_modules(source, module)))}
    assert problems == {}


def test_use_cases_and_dialogues_import_no_storage_and_no_infrastructure() -> None:
    problems = {path: bad for path, module, source in _sources("handlers", "dialogues")
                if (bad := use_case_violations(imported_modules(source, module)))}
    assert problems == {}


@pytest.mark.parametrize(("source", "core", "use_case"), [
    ("import sqlalchemy.orm", ["sqlalchemy.orm"], ["sqlalchemy.orm"]),
    ("def f():\n    from storage.sql import SqlUnitOfWork", ["storage.sql"], ["storage.sql"]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from handlers import notify",
     ["handlers"], []),
    ("from . import keys\nfrom .tickets import Ticket", [], []),
    ("from .. import settings", ["bot.settings"], []),
    ("import aiohttp.web", ["aiohttp.web"], ["aiohttp.web"]),
    ("from bot.core.ports import UnitOfWork\nimport dataclasses", [], []),
])
def test_the_checker_catches_what_it_must(source: str, core: list[str], use_case: list[str]) -> None:
    imports = imported_modules(source, "bot.core.sample")
    assert core_violations(imports) == core
    assert use_case_violations(imports) == use_case
