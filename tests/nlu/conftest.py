from __future__ import annotations

import sys
from pathlib import Path

# tests/nlu (no __init__.py) would otherwise shadow the real `nlu` package as a namespace package
_REPO = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [_REPO]:
    sys.path.insert(0, _REPO)
if getattr(sys.modules.get("nlu"), "__file__", "") is None:
    del sys.modules["nlu"]

import pytest  # noqa: E402

from nlu.embedded import EmbeddedNLU, load_embedded  # noqa: E402


@pytest.fixture(scope="session")
def nlu() -> EmbeddedNLU:
    # trained once and cached under .nlu-cache/; later runs only load it
    return load_embedded()
