from __future__ import annotations

import os
import sys
from pathlib import Path

# tests/nlu (no __init__.py) would otherwise shadow the real `nlu` package as a namespace package
_REPO = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [_REPO]:
    sys.path.insert(0, _REPO)
if getattr(sys.modules.get("nlu"), "__file__", "") is None:
    del sys.modules["nlu"]

import pytest  # noqa: E402

from nlu import data as nd  # noqa: E402
from nlu.embedded import EmbeddedNLU, load_embedded  # noqa: E402


@pytest.fixture(scope="session")
def nlu() -> EmbeddedNLU:
    # the shipped model (nlu/model/), as the bot loads it
    return load_embedded()


def need_shared(path: Path) -> Path:
    """The shared real data is for training and evaluation only: a test that needs it skips (with
    its reason printed, see -rs in pyproject) where it is absent, and fails in CI (CI=true)."""
    if path.exists():
        return path
    reason = f"shared real data {path} absent (training/evaluation only; set ZTC_SHARED_DATA)"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason}, and CI=true requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def tipdm_test() -> list[tuple[str, str]]:
    return nd.read_tipdm("test", need_shared(nd.tipdm_csv()))


@pytest.fixture
def smp2017() -> list[tuple[str, str]]:
    return nd.read_smp2017(need_shared(nd.smp2017_tsv()))


@pytest.fixture
def shared_training_data() -> None:
    for name in nd.SHARED_TRAINING_FILES:
        need_shared(nd.shared_data_dir() / name)
