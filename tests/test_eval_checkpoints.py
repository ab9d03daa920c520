"""`python -m harness.evaluate --run DIR`: each kept checkpoint evaluated alone; the best-per-suite report.

python -m pytest -q tests/test_eval_checkpoints.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config.settings import compose_resolved
from harness.evaluation.checkpoints import BEST_LABEL, best_report
from harness.run import run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, smoke_base) -> Path:
    results = tmp_path_factory.mktemp("ckpts")
    cfg, resolved = compose_resolved(["profile=smoke", f"results={results}", "exposure=1", "train.steps=2",
                                      "train.checkpoint_every=1", "train.keep_checkpoints=0", "eval.k=1"])
    run(cfg, resolved)
    return results / cfg.run_name


def evaluate_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.evaluate", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_every_kept_checkpoint_is_evaluated_and_the_best_report_is_labelled(run_folder):
    assert sorted(p.name for p in (run_folder / "checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2"]
    proc = evaluate_cli("--run", str(run_folder), "--checkpoints", "all", "--best-per-suite")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = run_folder / "eval_checkpoints"
    per = {c: json.loads((out / c / "eval.json").read_text()) for c in ("checkpoint-1", "checkpoint-2")}
    assert all(s["checkpoint"] == c and s["sampling"]["k"] == 1 for c, s in per.items())
    # the last checkpoint is the final model: the run's own eval.json numbers
    final = json.loads((run_folder / "eval.json").read_text())
    assert {n: r["average"] for n, r in per["checkpoint-2"]["suites"].items()} == \
        {n: r["average"] for n, r in final["suites"].items()}
    best = json.loads((out / "best_per_suite.json").read_text())
    assert best["label"] == BEST_LABEL and set(best["suites"]) == set(final["suites"])
    for suite, r in best["suites"].items():
        assert r["average"] == max(per[c]["suites"][suite]["average"] for c in per)
    again = evaluate_cli("--run", str(run_folder), "--checkpoints", "checkpoint-1")
    assert again.returncode == 0 and "already evaluated" in again.stdout


def test_an_unknown_checkpoint_is_one_line(run_folder):
    proc = evaluate_cli("--run", str(run_folder), "--checkpoints", "checkpoint-9")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --checkpoints checkpoint-9: not a complete")


def test_best_report_by_hand():
    per = {"c1": {"suites": {"a": {"average": 0.5, "se": 0.1}, "b": {"average": 0.2, "se": 0.1}}},
           "c2": {"suites": {"a": {"average": 0.4, "se": 0.1}, "b": {"average": 0.3, "se": 0.1}}}}
    got = best_report(per)["suites"]
    assert (got["a"]["checkpoint"], got["a"]["average"], got["b"]["checkpoint"]) == ("c1", 0.5, "c2")
