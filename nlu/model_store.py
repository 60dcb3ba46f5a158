"""The model on disk: the shipped model in nlu/model/, a retrained one in the cache directory,
and the decision which to load."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from nlu import data as nd
from nlu.linear import ENGINE_VERSION, LinearHead, Model, Part
from nlu.training import train

log = logging.getLogger(__name__)
CACHE_DIR = nd.REPO_ROOT / ".nlu-cache"

# nlu/model/ holds the shipped model, built by `zhitongche nlu train` and committed: a clone without
# the shared real data loads it as is. Two files: embedded.npz (numpy arrays only, no pickle;
# weights as int16 with one scale per label, which changes no prediction on the test sets) and
# embedded.json (version, the sha256 of every training source, counts, labels, lexicons, and the
# sha256 of the .npz so the two cannot drift apart). Written byte for byte the same for the same model.
MODEL_DIR = nd.NLU_DIR / "model"
ARRAYS_FILE, META_FILE = "embedded.npz", "embedded.json"
FORMAT = 1
_HEADS = ("intent", "category")


def cache_dir() -> Path:
    """Where the bot keeps a model it retrained itself (never over the shipped one)."""
    return Path(os.environ.get("ZTC_NLU_CACHE", CACHE_DIR))


def _quantise(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = (np.abs(w).max(0) / 32767.0).astype(np.float32)
    scale[scale == 0] = 1.0
    return np.round(w / scale).astype(np.int16), scale


def save_model(model: Model, directory: Path) -> None:
    vocab = sorted(model.vocab, key=model.vocab.__getitem__)
    assert not any("\n" in g for g in vocab)  # features never hold a newline: it separates them
    arrays = {"vocab": np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8),
              "char_table": np.array(sorted(model.char_table.items()), dtype=np.int32).reshape(-1, 2)}
    heads = {}
    for name in _HEADS:
        head: LinearHead = getattr(model, name)
        arrays[f"{name}.bias"] = head.bias.astype(np.float64)
        for i, part in enumerate(head.parts):
            q, scale = _quantise(part.weights)
            arrays[f"{name}.{i}.idf"] = part.idf.astype(np.float32)
            arrays[f"{name}.{i}.weights"], arrays[f"{name}.{i}.scale"] = q, scale
        heads[name] = {"labels": list(head.labels), "temperature": head.temperature,
                       "parts": [{"log_softmax": p.log_softmax, "scale": p.scale} for p in head.parts]}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue(),
                        compress_type=zipfile.ZIP_DEFLATED)
    blob = buf.getvalue()
    meta = {"format": FORMAT, "version": model.version, "data_hash": model.data_hash, "sources": model.sources,
            "trained_on": model.trained_on, "vocabulary": len(vocab), "heads": heads,
            "civic": sorted(model.civic), "places": model.places,
            "arrays_sha256": hashlib.sha256(blob).hexdigest()}
    directory.mkdir(parents=True, exist_ok=True)
    tmp = f".{os.getpid()}.tmp"  # atomic renames: a parallel worker never reads half a file
    (directory / (ARRAYS_FILE + tmp)).write_bytes(blob)
    (directory / (META_FILE + tmp)).write_text(
        json.dumps(meta, ensure_ascii=False, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    os.replace(directory / (ARRAYS_FILE + tmp), directory / ARRAYS_FILE)
    os.replace(directory / (META_FILE + tmp), directory / META_FILE)


def read_model(directory: Path) -> Model | None:
    """The model saved in `directory`; None when there is none, or it is unreadable (logged)."""
    meta_path, arrays_path = directory / META_FILE, directory / ARRAYS_FILE
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        blob = arrays_path.read_bytes()
        if meta.get("format") != FORMAT or hashlib.sha256(blob).hexdigest() != meta["arrays_sha256"]:
            raise ValueError("format or checksum mismatch")
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        vocab_list = arrays["vocab"].tobytes().decode("utf-8").split("\n")
        heads = {}
        for name in _HEADS:
            spec = meta["heads"][name]
            parts = [Part(arrays[f"{name}.{i}.idf"].astype(np.float64),
                          np.ascontiguousarray(arrays[f"{name}.{i}.weights"] * arrays[f"{name}.{i}.scale"],
                                               dtype=np.float32),
                          p["log_softmax"], p["scale"]) for i, p in enumerate(spec["parts"])]
            heads[name] = LinearHead(tuple(spec["labels"]), parts, arrays[f"{name}.bias"], spec["temperature"])
        return Model(meta["version"], meta["data_hash"], {g: i for i, g in enumerate(vocab_list)},
                     heads["intent"], heads["category"], {int(a): int(b) for a, b in arrays["char_table"]},
                     meta["places"], meta["trained_on"], frozenset(meta["civic"]), meta["sources"])
    except Exception as exc:  # a corrupt model is reported and replaced, never fatal on its own
        log.warning("NLU model in %s unreadable (%s)", directory, exc)
        return None


def changed_sources(model: Model, sources: dict[str, str | None]) -> list[str]:
    """What differs between the model and the current code and data (empty: the model is current)."""
    changed = [name for name in sorted(set(model.sources) | set(sources))
               if model.sources.get(name) != sources.get(name)]
    if model.version != ENGINE_VERSION:
        changed.insert(0, f"engine {model.version} → {ENGINE_VERSION}")
    return changed


def has_shared_data(sources: dict[str, str | None]) -> bool:
    return all(sources[name] is not None for name in nd.SHARED_TRAINING_FILES)


def build(directory: Path, sources: dict[str, str | None] | None = None) -> Model:
    """Train on the current data and save into `directory`; returns the model as saved."""
    started = time.perf_counter()
    save_model(train(sources), directory)
    model = read_model(directory)
    assert model is not None
    log.info("embedded NLU trained in %.1f s (%s) → %s", time.perf_counter() - started, model.trained_on, directory)
    return model


def load_or_train() -> Model:
    """The shipped model, as is, unless the training data is here and differs from what it was built
    from: then the model retrained into the cache directory (once; later starts load it)."""
    sources = nd.training_sources()
    shipped = read_model(MODEL_DIR)
    if shipped is not None:
        changed = changed_sources(shipped, sources)
        if not changed:
            return shipped
        if not has_shared_data(sources):
            repo_changed = [c for c in changed if c not in nd.SHARED_TRAINING_FILES]
            if repo_changed:
                log.warning("shipped NLU model is older than %s, but the real letters needed to retrain "
                            "are not in %s: using it as is", ", ".join(repo_changed), nd.shared_data_dir())
            return shipped
        cached = read_model(cache_dir())
        if cached is not None and not changed_sources(cached, sources):
            return cached
        log.info("NLU training data changed since the shipped model (%s): retraining into %s "
                 "(`zhitongche nlu train` updates nlu/model/)", ", ".join(changed), cache_dir())
    elif not has_shared_data(sources):
        log.warning("no shipped NLU model in %s and no real letters in %s: training on the hand-written "
                    "examples only, categories will be much worse", MODEL_DIR, nd.shared_data_dir())
    return build(cache_dir(), sources)
