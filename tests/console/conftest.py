"""Console tests run on the SQL backends (the console's read side is SQL): SQLite and PostgreSQL,
with the storage tests' fixtures."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

_spec = importlib.util.spec_from_file_location("_storage_fixtures", HERE.parent / "storage" / "conftest.py")
_storage = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(_storage)  # type: ignore[union-attr]
sqlite_template = _storage.sqlite_template
migrated_postgres = _storage.migrated_postgres
sql_backend = _storage.sql_backend
sql_uow_factory = _storage.sql_uow_factory
