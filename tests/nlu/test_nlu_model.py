"""The shipped embedded model (nlu/model/): built from the data in the repo, loaded as is, retrained
only where the training data is present and changed."""
from __future__ import annotations

import dataclasses
import logging

import pytest

from bot.core.tickets import CATEGORIES
from nlu import data as nd
from nlu import embedded, model_store
from nlu.evaluate import score
from nlu.linear import ENGINE_VERSION


def test_the_shipped_model_is_small_and_holds_no_pickle():
    arrays = model_store.MODEL_DIR / model_store.ARRAYS_FILE
    assert arrays.stat().st_size + (model_store.MODEL_DIR / model_store.META_FILE).stat().st_size < 5_000_000
    import numpy as np

    with np.load(arrays, allow_pickle=False) as npz:  # would raise on an object (pickled) array
        assert all(npz[key].dtype != object for key in npz.files)


def test_the_shipped_model_matches_the_training_files_in_the_repo(nlu):
    # runs everywhere: a change to nlu/data, the category examples, places or text.py needs
    # `zhitongche nlu train` (where the shared data is) and the new nlu/model/ committed
    shipped = model_store.read_model(model_store.MODEL_DIR)
    assert shipped is not None and shipped.version == ENGINE_VERSION
    changed = [c for c in model_store.changed_sources(shipped, nd.training_sources())
               if c not in nd.SHARED_TRAINING_FILES]
    assert changed == [], "run `zhitongche nlu train` and commit nlu/model/"
    assert shipped.trained_on["tipdm_dev"] == 1842 and shipped.trained_on["taxonomy"] > 0


def test_the_shipped_model_matches_the_shared_data(shared_training_data):
    shipped = model_store.read_model(model_store.MODEL_DIR)
    assert model_store.changed_sources(shipped, nd.training_sources()) == [], \
        "the shared data changed: run `zhitongche nlu train` and commit nlu/model/"


def test_the_bot_loads_the_shipped_model_as_is(nlu):
    assert nlu.model.data_hash == model_store.read_model(model_store.MODEL_DIR).data_hash


def test_saving_is_byte_for_byte_deterministic(tmp_path):
    shipped = model_store.read_model(model_store.MODEL_DIR)
    model_store.save_model(shipped, tmp_path)
    for name in (model_store.ARRAYS_FILE, model_store.META_FILE):
        assert (tmp_path / name).read_bytes() == (model_store.MODEL_DIR / name).read_bytes()
    again = model_store.read_model(tmp_path)
    probe = "我们小区后门那盏路灯坏掉半个月了"
    assert embedded.EmbeddedNLU(again).parse_sync(probe) == embedded.EmbeddedNLU(shipped).parse_sync(probe)


def test_a_damaged_model_is_refused_with_a_warning(tmp_path, caplog):
    model_store.save_model(model_store.read_model(model_store.MODEL_DIR), tmp_path)
    blob = bytearray((tmp_path / model_store.ARRAYS_FILE).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / model_store.ARRAYS_FILE).write_bytes(bytes(blob))
    with caplog.at_level(logging.WARNING, logger="nlu.model_store"):
        assert model_store.read_model(tmp_path) is None
    assert "unreadable" in caplog.text


@pytest.fixture
def edited_data(monkeypatch, tmp_path):
    """The training data as if nlu/data/nlu.yml had been edited since the shipped model was built;
    training itself replaced by a quick stand-in that records the call (the decision is under test)."""
    shipped = model_store.read_model(model_store.MODEL_DIR)
    sources = dict(shipped.sources, **{"nlu/data/nlu.yml": "0" * 64})
    monkeypatch.setattr(nd, "training_sources", lambda: dict(sources))
    monkeypatch.setenv("ZTC_NLU_CACHE", str(tmp_path / "cache"))
    trained = []

    def train(srcs):
        trained.append(srcs)
        return dataclasses.replace(shipped, sources=srcs, data_hash=nd.sources_hash(srcs))

    monkeypatch.setattr(model_store, "train", train)
    return sources, trained


def test_changed_data_present_retrains_once_into_the_cache(edited_data, caplog, tmp_path):
    sources, trained = edited_data
    with caplog.at_level(logging.INFO, logger="nlu.model_store"):
        model = model_store.load_or_train()
    assert trained == [sources] and model.sources == sources
    lines = [r.getMessage() for r in caplog.records if "retraining" in r.getMessage()]
    assert len(lines) == 1 and "nlu/data/nlu.yml" in lines[0]
    assert model_store.read_model(tmp_path / "cache").data_hash == model.data_hash
    assert model_store.read_model(model_store.MODEL_DIR).data_hash != model.data_hash  # shipped one untouched
    assert model_store.load_or_train().data_hash == model.data_hash and len(trained) == 1  # next start: cache


def test_without_the_shared_data_the_shipped_model_is_used_as_is(edited_data, monkeypatch, caplog):
    sources, trained = edited_data
    absent = dict(sources, **{name: None for name in nd.SHARED_TRAINING_FILES})
    monkeypatch.setattr(nd, "training_sources", lambda: dict(absent))
    with caplog.at_level(logging.WARNING, logger="nlu.model_store"):
        model = model_store.load_or_train()
    assert trained == [] and model.data_hash == model_store.read_model(model_store.MODEL_DIR).data_hash
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "nlu/data/nlu.yml" in caplog.text


def test_the_shipped_model_meets_its_targets_on_the_real_test_data(nlu, tipdm_test, smp2017):
    # the figures of nlu/README.md are this model's (`zhitongche nlu eval` prints them in full)
    rep = score("category", [c for _, c in tipdm_test], [nlu.parse_sync(t)["category"]["name"] for t, _ in tipdm_test])
    assert rep.n == 921 and rep.macro_f1 >= 0.90
    assert set(rep.labels) <= set(CATEGORIES)
    reports = sum(nlu.parse_sync(t)["intent"]["name"] == "report_issue" for t, _ in smp2017)
    assert reports / len(smp2017) <= 0.05
