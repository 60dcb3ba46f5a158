"""`zhitongche nlu parse` as a subprocess: one text per line in, one JSON object per line out."""
from __future__ import annotations

import json
import subprocess
import sys

from nlu import data as nd

SCRIPT = "from nlu.cli import nlu_group; nlu_group(prog_name='zhitongche nlu')"


def test_parse_round_trip_over_stdin(nlu):  # the fixture warms the disk cache
    lines = ["你好", "我們村口的路燈壞了，在松陵", "", "#1024 进度怎么样", "😀", "讲个笑话"]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "parse", "--backend", "embedded"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True,
                          encoding="utf-8", cwd=nd.REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == len(lines)
    results = [json.loads(o) for o in out]
    assert [r["text"] for r in results] == lines
    assert "路燈" in out[1]  # ensure_ascii=False: Chinese stays readable
    assert results[0]["intent"]["name"] == "greet"
    assert results[1]["intent"]["name"] == "report_issue"
    assert results[1]["entities"][0]["value"] == "松陵街道"
    assert results[3]["entities"][0] == {**results[3]["entities"][0], "entity": "ticket", "value": "1024"}
    assert results[2]["intent"]["name"] == "nlu_fallback"


def test_importing_the_cli_trains_nothing():
    code = "import nlu.cli, nlu.embedded as e; assert e._singleton is None; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=nd.REPO_ROOT,
                          timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_eval_reports_every_test_set_with_metrics(nlu):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "eval", "--limit", "30", "--json"], capture_output=True,
                          text=True, encoding="utf-8", cwd=nd.REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    reports = {r["name"]: r for r in json.loads(proc.stdout)}
    short = reports["embedded · category · nlu/test_categories.yml (short chat reports)"]
    intents = reports["embedded · intent · nlu/test_intents.yml"]
    assert short["n"] == 30 and intents["n"] == 30
    for rep in (short, intents):
        assert 0.0 <= rep["macro_f1"] <= 1.0 and rep["per_label"] and rep["latency_ms"]["p99"] > 0
    assert 0.0 <= intents["report_issue recall"] <= 1.0
    if nd.read_tipdm("test"):
        assert reports["embedded · category · tipdm2020 split=test"]["n"] == 30
