"""The analysis commands on real smoke runs: make figures writes every file, a command runs as a
script and as a module, and bad input (no folder, nothing finished, mixed configs) is one line.

python -m pytest -q tests/test_analysis_commands.py

The results folder: tests/analysis_runs.py (built once per session, tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from analysis_runs import FAILED, KILLED, ROOT, cli, copy_runs, nonempty, one_error_line, run_in_process

from analysis.cli import AnalysisError
from analysis.collect import collect
from analysis.comparable import split_comparable


@pytest.fixture(scope="session")
def results(analysis_results: Path) -> Path:
    return analysis_results


def test_figures_command_writes_every_file(results, tmp_path):
    out = tmp_path / "out"
    r = cli("analysis.figures", "--results", str(results), "--out", str(out))
    assert r.returncode == 0, r.stderr
    for stem in ["mismatch_vs_exposure", "training_curves"]:
        assert nonempty(out / "figures" / f"{stem}.png", b"\x89PNG")
        assert nonempty(out / "figures" / f"{stem}.pdf", b"%PDF")
    assert (out / "tables" / "average2.md").read_text().count("\n|") >= 6
    assert (out / "tables" / "average2.tex").is_file()
    assert "verdict: " in r.stdout and "Spearman rho" in r.stdout
    assert f"{KILLED}: running (process gone)" in r.stdout and f"{FAILED}: failed" in r.stdout
    assert "controller figure: skipped (no ATESD run" in r.stdout  # a skip, not an error
    assert not list((out / "figures").glob("controller*"))


def test_plot_mismatch_runs_as_a_script(results, tmp_path):
    r = subprocess.run([sys.executable, "analysis/plot_mismatch.py", "--results", str(results),
                        "--out", str(tmp_path / "fig.png")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert nonempty(tmp_path / "fig.png", b"\x89PNG") and nonempty(tmp_path / "fig.pdf", b"%PDF")
    lines = r.stdout.strip().splitlines()
    assert str(tmp_path / "fig.png") in lines[0] and lines[-1].startswith("verdict: ")


def test_missing_and_empty_results_folder(tmp_path):
    one_error_line(cli("analysis.figures", "--results", str(tmp_path / "nope")), "does not exist")
    (tmp_path / "empty").mkdir()
    one_error_line(cli("analysis.tables", "--results", str(tmp_path / "empty")), "no run folders")


def test_no_finished_run(results, tmp_path):
    root = copy_runs(results, tmp_path / "runs", [FAILED, KILLED])
    one_error_line(cli("analysis.figures", "--results", str(root)), "no finished run",
                    "1 failed", "1 running")
    one_error_line(cli("analysis.tables", "--results", str(root)), "no finished run")


def test_mixed_task_configs_refused_unless_grouped(results, tmp_path, smoke_base):
    root = copy_runs(results, tmp_path / "runs", ["opsd-r0-s0", "opsd-r1-s0", "base"])
    # A real run on another task config (validation set size), same base model folder.
    run_in_process("exposure=1", "tag=val4", "task.val_size=4", f"model.path={smoke_base}",
                    f"results={root}")
    with pytest.raises(AnalysisError, match="task.val_size"):
        split_comparable(collect(root).runs)
    one_error_line(cli("analysis.figures", "--results", str(root)), "task.val_size", "--group-by")
    r = cli("analysis.figures", "--results", str(root), "--group-by", "task.val_size")
    assert r.returncode == 0, r.stderr
    assert "[task.val_size=4]" in r.stdout and "[task.val_size=8]" in r.stdout
    assert len(list((root / "tables").glob("average2-task.val_size=*.md"))) == 2
    assert len(list((root / "figures").glob("mismatch_vs_exposure-*.png"))) == 2
    bad = cli("analysis.tables", "--results", str(root), "--group-by", "task.nosuch")
    one_error_line(bad, "task.nosuch")


@pytest.mark.parametrize("module", ["plot_mismatch", "tables", "curves", "controller_plot", "figures",
                                    "collect"])
def test_commands_run_as_script_and_as_module(module):
    for cmd in ([sys.executable, f"analysis/{module}.py", "--help"],
                [sys.executable, "-m", f"analysis.{module}", "--help"]):
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "--results" in r.stdout, (cmd, r.stderr)

