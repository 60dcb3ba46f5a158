"""NLU benchmark: in-process parse latency of the embedded engine (percentiles, no pass/fail), and
quality side by side with Rasa DIET models trained on the same data in the same run.

    .venv/bin/python bench/bench_nlu.py [--no-rasa] [--category-epochs 30] [--truncate 128]

Rasa part (skipped, and said so, when <repo>/.rasa-venv is missing): trains an intent model on
nlu/data with nlu/config.yml and a category model on the same category data the embedded engine
uses (tipdm2020 split=dev, truncated to --truncate characters, plus nlu/categories and the board's
label taxonomy), serves each on a free loopback port, evaluates both on the same test sets, stops
them."""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from nlu import data as nd  # noqa: E402
from nlu.evaluate import format_report, percentiles, timed  # noqa: E402


def latency(engine) -> None:
    chat = [e.text for e in nd.load_rasa_examples(nd.TEST_INTENTS_FILE)] + [t for t, _ in nd.read_smp2017()]
    letters = [t for t, _ in nd.read_tipdm("test")]
    for _ in range(3):  # warm caches
        timed(engine.parse_sync, chat[:200])
    print("== embedded engine, in-process parse latency (ms; this machine, shared cores)")
    for name, texts in (("chat messages (held-out intents + smp2017)", chat),
                        ("long letters (tipdm2020 test, median 242 chars)", letters),
                        ("5,000-character letter", ["我们小区的路灯坏了很久。" * 417] * 50)):
        if texts:
            _, lat = timed(engine.parse_sync, texts)
            p = percentiles(lat)
            print(f"  {name:<50} n={len(texts):>5}  " + "  ".join(f"{k}={v:.3f}" for k, v in p.items()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rasa exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url + "/status", timeout=2)
            return
        except Exception:
            time.sleep(1)
    raise RuntimeError("rasa server did not come up")


def _write_category_yaml(path: Path, truncate: int) -> None:
    lines = ['version: "3.1"', "nlu:"]
    by_label: dict[str, list[str]] = {}
    for text, label in nd.read_tipdm("dev"):
        by_label.setdefault(label, []).append(text[:truncate])
    for e in nd.load_rasa_examples(nd.CATEGORIES_FILE):
        by_label.setdefault(e.label, []).append(e.text)
    for text, label in nd.read_taxonomy(by_label):
        by_label[label].append(text)
    for label, texts in by_label.items():
        lines += [f"- intent: {label}", "  examples: |"]
        lines += ["    - " + t.replace("\n", " ").replace("[", "【").replace("]", "】") for t in texts]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def rasa_side_by_side(venv: Path, category_epochs: int, truncate: int) -> None:
    rasa = venv / "bin" / "rasa"
    env = {**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "RASA_TELEMETRY_ENABLED": "false"}
    with tempfile.TemporaryDirectory(prefix="bench-nlu-") as tmp:
        tmpd = Path(tmp)
        cat_dir = tmpd / "categories"
        cat_dir.mkdir()
        _write_category_yaml(cat_dir / "categories.yml", truncate)
        cat_cfg = tmpd / "config-categories.yml"
        cfg = (REPO / "nlu" / "config.yml").read_text(encoding="utf-8")
        cat_cfg.write_text(cfg.replace("epochs: 100", f"epochs: {category_epochs}\n    number_of_transformer_layers: 0"),
                           encoding="utf-8")
        jobs = [("intents", REPO / "nlu" / "data", REPO / "nlu" / "config.yml"), ("categories", cat_dir, cat_cfg)]
        models = {}
        for name, data_dir, config in jobs:
            t0 = time.perf_counter()
            out = subprocess.run([str(rasa), "train", "nlu", "--nlu", str(data_dir), "--config", str(config),
                                  "--out", str(tmpd), "--fixed-model-name", name], cwd=REPO, env=env,
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"Rasa {name} training failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
                return
            models[name] = tmpd / f"{name}.tar.gz"
            print(f"Rasa DIET {name} model trained in {time.perf_counter() - t0:.0f} s")
        procs, urls = [], {}
        try:
            for name, model in models.items():
                port = _free_port()
                procs.append(subprocess.Popen([str(rasa), "run", "--enable-api", "-m", str(model), "-i", "127.0.0.1",
                                               "-p", str(port)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL, start_new_session=True))
                urls[name] = f"http://127.0.0.1:{port}"
                _wait(urls[name], procs[-1])
            from nlu.cli import _rasa_reports

            for rep in _rasa_reports(urls["intents"], urls["categories"], None):
                print(format_report(rep) + "\n")
        finally:
            for p in procs:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-rasa", action="store_true")
    ap.add_argument("--category-epochs", type=int, default=30)
    ap.add_argument("--truncate", type=int, default=128)
    args = ap.parse_args()

    from nlu.cli import _evaluate
    from nlu.embedded import load_embedded

    t0 = time.perf_counter()
    engine = load_embedded()
    print(f"embedded model ready in {time.perf_counter() - t0:.1f} s (disk cache {'hit' if time.perf_counter() - t0 < 5 else 'miss: trained'})")
    latency(engine)
    print()
    for rep in _evaluate(engine.parse_sync, "embedded", None):
        print(format_report(rep) + "\n")
    venv = Path(os.environ.get("ZTC_RASA_VENV", REPO / ".rasa-venv"))
    if args.no_rasa:
        print("Rasa comparison SKIPPED (--no-rasa)")
    elif not (venv / "bin" / "rasa").exists():
        print(f"Rasa comparison SKIPPED: no Rasa venv at {venv} (create it with nlu/rasa/serve.sh --install-only)")
    else:
        rasa_side_by_side(venv, args.category_epochs, args.truncate)


if __name__ == "__main__":
    main()
