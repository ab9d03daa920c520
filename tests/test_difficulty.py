"""The per-difficulty analysis on hand-made run folders: cells, CI, best r per suite, files, errors.

python -m pytest -q tests/test_difficulty.py

Run folders are written here, not trained: each holds the real composed config.yaml of its
run (smoke profile), a status.json and an eval.json whose averages the test chooses - easy's
score rises with r (best 1.0), hard's falls (best 0.0), medium peaks at 0.5. Runs that must
stay out (ATESD, a tagged OPSD run, another loss, a failed run) score far off, so letting
one in moves a mean.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from omegaconf import OmegaConf
from run_folders import at, write_run
from scipy import stats

from analysis import figures
from analysis.cli import AnalysisError
from analysis.collect import collect
from analysis.difficulty import (
    FIGURE_STEM,
    best_exposures,
    difficulty_table,
    draw,
    fixed_opsd_scores,
    to_latex,
    to_markdown,
)
from analysis.style import pyplot
from analysis.tables import Cell
from harness.config.settings import compose_raw

ROOT = Path(__file__).resolve().parent.parent
SUITES = ["easy_k3", "medium_k4", "hard_k5"]
EXPOSURES = [0.0, 0.5, 1.0]
SEEDS = [0, 1, 2]
# Average@k (fraction) per suite and r; seed s adds NOISE[s].
SCORES = {"easy_k3": {0.0: 0.50, 0.5: 0.70, 1.0: 0.90},
          "medium_k4": {0.0: 0.40, 0.5: 0.60, 1.0: 0.50},
          "hard_k5": {0.0: 0.45, 0.5: 0.35, 1.0: 0.20}}
NOISE = {0: -0.02, 1: 0.0, 2: 0.05}
BASE = {"easy_k3": 0.55, "medium_k4": 0.45, "hard_k5": 0.30}
FAR = {s: 0.99 for s in SUITES}  # runs that must be left out score this


def _raw(*overrides: str):
    return compose_raw(["profile=smoke", *overrides])


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("difficulty") / "runs"
    opsd = _raw("method=opsd")
    for r in EXPOSURES:
        for s in SEEDS:
            write_run(root, at(opsd, exposure=r, seed=s), {k: v[r] + NOISE[s] for k, v in SCORES.items()})
    write_run(root, _raw("method=base"), BASE)
    write_run(root, _raw("method=atesd"), FAR)
    write_run(root, at(opsd, exposure=0.5, seed=0, tag="live"), FAR)  # opsd-live-r0.5-s0
    write_run(root, at(opsd, exposure=0.5, seed=7, **{"method.loss": "sft"}), FAR)  # another loss
    write_run(root, at(opsd, exposure=1.0, seed=3), None, state="failed")
    return root


def _cli(*args: str, script: bool = False) -> subprocess.CompletedProcess:
    head = ["analysis/difficulty.py"] if script else ["-m", "analysis.difficulty"]
    return subprocess.run([sys.executable, *head, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_only_finished_fixed_opsd_runs_enter(results):
    scores = fixed_opsd_scores(collect(results, refresh=True).runs)
    want = {f"opsd-r{r:g}-s{s}" for r in EXPOSURES for s in SEEDS}
    assert set(scores["run"]) == want  # no base, ATESD, tagged, other-loss or failed run
    assert len(scores) == len(want) * len(SUITES)


def test_cells_are_mean_and_t_interval_over_seeds(results):
    t = difficulty_table(collect(results).runs)
    assert t.suites == SUITES and t.exposures == EXPOSURES and t.k == 2
    t975 = stats.t.ppf(0.975, len(SEEDS) - 1)
    for suite in SUITES:
        for r in EXPOSURES:
            vals = [100 * (SCORES[suite][r] + NOISE[s]) for s in SEEDS]
            cell = t.cells[suite][r]
            assert cell.n == 3 and cell.mean == pytest.approx(np.mean(vals))
            assert cell.half == pytest.approx(t975 * np.std(vals, ddof=1) / math.sqrt(3))
        assert t.base[suite] == pytest.approx(100 * BASE[suite])
        assert t.seeds(suite) == "3"


def test_best_r_per_suite(results):
    t = difficulty_table(collect(results).runs)
    assert t.best == {"easy_k3": [1.0], "medium_k4": [0.5], "hard_k5": [0.0]}
    md = to_markdown(t)
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in md.splitlines()
            if line.startswith("| ") and "_k" in line}
    assert list(rows) == SUITES  # easy -> hard
    head = next(line for line in md.splitlines() if line.startswith("| Suite")).strip("| ").split(" | ")
    assert head == ["Suite", "Base", "r = 0", "r = 0.5", "r = 1", "best r", "seeds"]
    for suite, r in [("easy_k3", 1.0), ("medium_k4", 0.5), ("hard_k5", 0.0)]:
        cells = rows[suite]
        bold = [head[i] for i, c in enumerate(cells) if c.startswith("**")]
        assert bold == [f"r = {r:g}"] and cells[-2] == f"{r:g}" and cells[-1].rstrip(" |") == "3"
    assert "\\textbf{" in to_latex(t) and "$r = 0.5$" in to_latex(t)


def test_best_exposures_ties():
    cell = {r: Cell(m, 1.0, 3) for r, m in [(0.0, 40.0), (0.5, 60.0), (1.0, 60.0)]}
    assert best_exposures(cell) == [0.5, 1.0]  # a tie at the top: both
    assert best_exposures({r: Cell(0.0, 0.0, 3) for r in EXPOSURES}) == []  # all tie: none stands out
    assert best_exposures({0.0: Cell(math.nan, math.nan, 0), 1.0: Cell(5.0, math.nan, 1)}) == [1.0]


def test_suites_ordered_by_difficulty_not_config_order(tmp_path):
    raw = _raw("method=opsd")
    OmegaConf.update(raw, "task.suites", [{"name": "hard_k5", "num_ops": 5, "size": 4},
                                          {"name": "easy_k3", "num_ops": 3, "size": 4}])
    for s in SEEDS[:2]:
        write_run(tmp_path, at(raw, exposure=0.5, seed=s), {"hard_k5": 0.3, "easy_k3": 0.6 + s / 10})
    t = difficulty_table(collect(tmp_path).runs)
    assert t.suites == ["easy_k3", "hard_k5"]
    assert math.isnan(t.base["easy_k3"])  # no base run: no reference
    assert t.best == {"easy_k3": [0.5], "hard_k5": [0.5]}  # one exposure: it is the best


def test_figure_draws_the_means_and_marks_the_best(results):
    runs = collect(results).runs
    t = difficulty_table(runs)
    plt = pyplot()
    fig, ax = plt.subplots()
    draw(ax, t, fixed_opsd_scores(runs))
    stars = [(round(float(line.get_xdata()[0])), float(line.get_ydata()[0])) for line in ax.lines
             if line.get_marker() == "*"]
    assert sorted(stars) == sorted((round(r), t.cells[s][r].mean) for s in SUITES for r in t.best[s])
    drawn = {tuple(np.round(line.get_ydata(), 9)) for line in ax.lines if line.get_marker() == "o"}
    assert drawn == {tuple(np.round([t.cells[s][r].mean for r in EXPOSURES], 9)) for s in SUITES}
    bars = [c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    assert len(bars) == len(SUITES)
    plt.close(fig)


def _magic(path: Path, head: bytes) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes().startswith(head)


@pytest.mark.parametrize("script", [False, True])
def test_command_writes_figure_and_table(results, tmp_path, script):
    r = _cli("--results", str(results), "--out", str(tmp_path), script=script)
    assert r.returncode == 0, r.stderr
    assert _magic(tmp_path / "figures" / f"{FIGURE_STEM}.png", b"\x89PNG")
    assert _magic(tmp_path / "figures" / f"{FIGURE_STEM}.pdf", b"%PDF")
    md = (tmp_path / "tables" / "average2_by_difficulty.md").read_text()
    assert md == to_markdown(difficulty_table(collect(results).runs))
    assert (tmp_path / "tables" / "average2_by_difficulty.tex").read_text().count("\\\\") == 4
    assert "best r per suite (easy -> hard): easy_k3 1, medium_k4 0.5, hard_k5 0" in r.stdout
    assert "opsd-r1-s3: failed" in r.stdout


def test_make_figures_writes_them_too(results, tmp_path, capsys):
    figures.main(["--results", str(results), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "difficulty figure and table: " in out and "hard_k5 0" in out
    assert _magic(tmp_path / "figures" / f"{FIGURE_STEM}.png", b"\x89PNG")
    assert (tmp_path / "tables" / "average2_by_difficulty.md").is_file()


def test_no_fixed_exposure_run_is_one_line(tmp_path):
    write_run(tmp_path, _raw("method=base"), BASE)
    write_run(tmp_path, _raw("method=atesd"), FAR)
    write_run(tmp_path, at(_raw("method=opsd"), exposure=0.5), None, state="failed")
    with pytest.raises(AnalysisError, match="no finished fixed-exposure OPSD run"):
        difficulty_table(collect(tmp_path).runs)
    r = _cli("--results", str(tmp_path), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "no finished fixed-exposure OPSD run" in r.stderr and "atesd" in r.stderr
    assert not (tmp_path / "out").exists()
