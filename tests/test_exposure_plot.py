"""The exposure figures from real smoke runs: trajectories of moving sources, final r by difficulty.

python -m pytest -q tests/test_exposure_plot.py
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.cli import AnalysisError
from analysis.collect import collect
from analysis.exposure_plot import final_by_difficulty, main, trajectories
from harness.runs.rundir import read_jsonl


@pytest.fixture(scope="module")
def results(tmp_path_factory, smoke_base):
    root = tmp_path_factory.mktemp("exposure")
    for extra in (["source=per_problem", "seed=0"], ["source=per_problem", "seed=1"],
                  ["source=target_mismatch", "target_mismatch.hold=1", "probe.every=1"], ["exposure=0.5"]):
        cmd = [sys.executable, "-m", "harness.run", "profile=smoke", f"results={root}", "train.steps=3",
               "per_problem.up=0.3", *extra]
        assert subprocess.run(cmd, capture_output=True, text=True, timeout=300).returncode == 0
    return root


def test_final_r_by_difficulty_is_each_runs_last_exposure_per_class(results):
    col = collect(results)
    table = final_by_difficulty(col.runs, col.metrics)
    assert set(table["method"]) == {"per_problem"} and (table["seeds"] == 2).all()
    by_run = {}
    for seed in (0, 1):
        metrics = read_jsonl(results / f"per_problem-s{seed}" / "metrics.jsonl")
        rows = [r for r in metrics if r["kind"] == "exposure"]
        for r in rows:  # the last row of each class wins (rows are in step order)
            by_run.setdefault(seed, {})[r["ref_steps"]] = r["exposure"]
    for t in table.itertuples():
        got = [by_run[s][t.ref_steps] for s in (0, 1) if t.ref_steps in by_run[s]]
        assert t.mean == pytest.approx(sum(got) / len(got)) and t.min == min(got) and t.max == max(got)


def test_trajectories_leave_fixed_runs_out_and_figures_are_written(results, capsys):
    col = collect(results)
    traj = trajectories(col.runs, col.metrics)
    assert set(traj["method"]) == {"per_problem", "target_mismatch"} and len(traj) == 9
    main(["--results", str(results)])
    for name in ("figures/exposure_trajectories.png", "figures/exposure_by_difficulty.pdf",
                 "tables/exposure_by_difficulty.md"):
        assert (results / name).is_file(), name
    assert "| Per-problem r |" in (results / "tables/exposure_by_difficulty.md").read_text()


def test_nothing_to_draw_is_one_clear_error(tmp_path, results):
    col = collect(results)
    fixed = col.runs[col.runs["exposure_source"] == "fixed"]
    with pytest.raises(AnalysisError, match="no run whose exposure moves"):
        trajectories(fixed, col.metrics[col.metrics["run"].isin(fixed["run"])])
