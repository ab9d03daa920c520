"""Analysis on real smoke runs: the runs and metrics tables, the cache, CI, the Average@k table
against eval files, marked failures, the mismatch figure's numbers, the LaTeX table, tune trials.

python -m pytest -q tests/test_analysis.py

The results folder is built once per session from real smoke-profile runs (tests/analysis_runs.py;
tests/conftest.py analysis_results). The commands and their bad input: tests/test_analysis_commands.py;
the controller figure: tests/test_controller_plot.py.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from analysis_runs import DONE, FAILED, KILLED, SUITES, copy_runs, eval_average
from scipy import stats

from analysis.collect import collect, run_info
from analysis.comparable import split_comparable
from analysis.plot_mismatch import sweep_points, sweep_summary
from analysis.stats import mean_ci
from analysis.tables import MEAN, AverageTable, Cell, average_table, to_latex, to_markdown
from harness.runs.rundir import read_jsonl
from harness.runs.runinfo import FINAL_FRACTION


@pytest.fixture(scope="session")
def results(analysis_results: Path) -> Path:
    return analysis_results


@pytest.fixture(scope="session")
def collected(results):
    return collect(results, refresh=True)

# ---- collect ------------------------------------------------------------------------------------
def test_every_run_is_kept_and_marked(collected):
    info = run_info(collected.runs).set_index("run")
    assert set(info.index) == {*DONE, FAILED, KILLED}
    assert (info.loc[DONE, "state"] == "done").all()
    assert info.loc[FAILED, "state"] == "failed" and info.loc[FAILED, "reason"]
    assert info.loc[KILLED, "state"] == "running" and info.loc[KILLED, "stalled"]  # its process is gone
    assert not info.loc[DONE, "stalled"].any()
    # one row per run x suite for evaluated runs, one row with no suite for the others
    rows = collected.runs.groupby("run").size()
    assert all(rows[n] == 3 for n in DONE) and rows[FAILED] == 1 and rows[KILLED] == 1
    assert collected.runs.loc[collected.runs["run"] == FAILED, "suite"].isna().all()
    assert info.loc["opsd-r0-s1", "cfg.probe.exposures"] == json.dumps([0.0, 0.25, 0.5, 0.75, 1.0])


def test_metrics_table_is_the_jsonl_rows(collected, results):
    m = collected.metrics
    for name in ["opsd-r1-s0", KILLED]:
        rows = read_jsonl(results / name / "metrics.jsonl")
        mine = m[m["run"] == name]
        assert len(mine) == len(rows)
        assert list(mine["step"]) == [r["step"] for r in rows]
    killed = m[m["run"] == KILLED]
    assert 999 not in set(killed["step"])  # the truncated last line is skipped
    assert (killed["kind"] == "train").sum() >= 2
    probes = m[(m["run"] == "opsd-r1-s0") & (m["kind"] == "probe")]
    assert sorted(probes["probe_exposure"].unique()) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert probes["mismatch_kl_st"].notna().all()


def test_cache_is_reused_and_refreshed_when_runs_change(results, tmp_path):
    root = copy_runs(results, tmp_path / "runs", ["opsd-r0-s0", "opsd-r1-s0", "base"])
    first = collect(root)
    assert not first.from_cache and (root / "runs.parquet").is_file() and (root / "metrics.parquet").is_file()
    again = collect(root)
    assert again.from_cache
    assert again.runs.equals(first.runs) and again.metrics.equals(first.metrics)
    with open(root / "opsd-r0-s0" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 5, "kind": "train", "mismatch_kl_st": 0.5}) + "\n")
    grown = collect(root)
    assert not grown.from_cache and len(grown.metrics) == len(first.metrics) + 1
    shutil.rmtree(root / "base")
    assert set(collect(root).runs["run"]) == {"opsd-r0-s0", "opsd-r1-s0"}


def test_mean_ci_is_t_interval_on_real_values(collected):
    # Real, non-zero values: each step's mismatch of one run.
    x = collected.metrics.query("run == 'opsd-r1-s0' and kind == 'probe'")["mismatch_kl_st"].to_numpy()
    n = len(x)
    direct = stats.t.ppf(0.975, n - 1) * np.std(x, ddof=1) / math.sqrt(n)
    mean, half, k = mean_ci(x)
    assert k == n and mean == pytest.approx(x.mean()) and half == pytest.approx(direct)
    assert stats.t.ppf(0.975, 1) == pytest.approx(12.706, abs=1e-3)  # 2 seeds: a wide interval, as it is
    assert math.isnan(mean_ci(x[:1])[1]) and mean_ci([])[2] == 0


# ---- the Average@k table ------------------------------------------------------------------------
def test_table_cells_match_eval_files(collected, results):
    (_, runs), = split_comparable(collected.runs)
    table = average_table(runs)
    assert table.columns == [*SUITES, MEAN] and table.k == 2
    assert list(table.labels.values()) == ["Base model", "Fixed r = 0", "Fixed r = 0.5", "OPSD (r = 1)"]
    t975 = stats.t.ppf(0.975, 1)
    for method, seeds in [("opsd-r0", [0, 1]), ("opsd-r1", [0, 1])]:
        names = [f"{method}-s{s}" for s in seeds]
        for suite in SUITES:
            vals = [100 * eval_average(results, n, suite) for n in names]
            cell = table.cells[method][suite]
            assert cell.n == 2 and cell.mean == pytest.approx(np.mean(vals))
            assert cell.half == pytest.approx(t975 * np.std(vals, ddof=1) / math.sqrt(2))
        per_run = [100 * np.mean([eval_average(results, n, s) for s in SUITES]) for n in names]
        assert table.cells[method][MEAN].mean == pytest.approx(np.mean(per_run))
    base = table.cells["base"]["easy_k3"]
    assert base.n == 1 and base.mean == pytest.approx(100 * eval_average(results, "base", "easy_k3"))
    assert math.isnan(base.half)
    delta = dict(table.deltas)["Δ Fixed r = 0 (best other r) − OPSD"]
    assert delta[MEAN] == pytest.approx(table.cells["opsd-r0"][MEAN].mean - table.cells["opsd-r1"][MEAN].mean)


def test_table_marks_failed_and_unfinished_runs(collected):
    (_, runs), = split_comparable(collected.runs)
    table = average_table(runs)
    assert table.runs_note["opsd-r1"] == "2 (+1 failed)"
    assert table.runs_note["opsd-r0.5"] == "0 (+1 stalled)"  # the killed run: a row, no numbers
    assert math.isnan(table.cells["opsd-r0.5"]["easy_k3"].mean)
    md, tex = to_markdown(table), to_latex(table)
    assert "| OPSD (r = 1) | 2 (+1 failed) |" in md and "| Fixed r = 0.5 | 0 (+1 stalled) | - |" in md
    assert "\\begin{tabular}" in tex and "easy\\_k3" in tex and "$\\Delta$" in tex


def test_best_per_column_is_bold_unless_all_tie(collected):
    (_, runs), = split_comparable(collected.runs)
    table = average_table(runs)
    for col in table.columns:
        means = {m: c[col].mean for m, c in table.cells.items() if not math.isnan(c[col].mean)}
        best = table.best(col)
        if len(set(means.values())) == 1:
            assert best == set()  # nothing stands out: nothing is marked
        else:
            assert best == {m for m, v in means.items() if v == max(means.values())}


# ---- the mismatch figure's numbers --------------------------------------------------------------
def test_sweep_summary_matches_a_direct_computation(collected, results):
    (_, runs), = split_comparable(collected.runs)
    points = sweep_points(runs)
    assert set(points["run"]) == {"opsd-r0-s0", "opsd-r0-s1", "opsd-r1-s0", "opsd-r1-s1"}  # done only
    summary = sweep_summary(points).set_index(["exposure", "direction"])
    for r in (0.0, 1.0):
        late = []
        for s in (0, 1):
            train = [x for x in read_jsonl(results / f"opsd-r{r:g}-s{s}" / "metrics.jsonl")
                     if x["kind"] == "train"]
            tail = train[-max(1, math.ceil(FINAL_FRACTION * len(train))):]
            late.append(np.mean([x["mismatch_kl_st"] for x in tail]))
        row = summary.loc[(r, "mismatch_kl_st")]
        assert row["n"] == 2 and row["mean"] == pytest.approx(np.mean(late))
        assert row["half"] == pytest.approx(stats.t.ppf(0.975, 1) * np.std(late, ddof=1) / math.sqrt(2))


def test_spearman_permutation_p_is_exact_for_few_runs():
    import itertools

    import numpy as np
    from scipy import stats

    from analysis.stats import spearman_with_permutation_p

    x = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    rho, p = spearman_with_permutation_p(x, np.array([0.01, 0.07, 0.13, 0.28, 0.37]))
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 120)  # only the two extreme orders
    y = np.array([0.3, 0.1, 0.5, 0.2, 0.6, 0.4])
    x6 = np.arange(6.0)
    obs = abs(stats.spearmanr(x6, y).statistic)
    perms = [abs(stats.spearmanr(x6, np.array(q)).statistic) for q in itertools.permutations(y)]
    brute = np.mean([v >= obs - 1e-12 for v in perms])
    assert spearman_with_permutation_p(x6, y)[1] == pytest.approx(brute)


# ---- the LaTeX table (pandas Styler) and the two ways to run a command ---------------------------
def test_latex_table_parses_back_to_the_cells():
    cells = {"base": {"easy": Cell(57.5, math.nan, 1), MEAN: Cell(57.5, math.nan, 1)},
             "opsd-r1": {"easy": Cell(97.84, 0.21, 3), MEAN: Cell(96.8, 0.4, 3)}}
    table = AverageTable(12, ["easy", MEAN], {"base": "Base model", "opsd-r1": "OPSD (r = 1)"}, cells,
                         {"base": "1", "opsd-r1": "2 (+1 failed)"},
                         [("Δ Fixed r = 0.5 (best other r) − OPSD", {"easy": -17.44, MEAN: math.nan})])
    tex = to_latex(table)
    assert tex.startswith("% Average@12") and "\\begin{tabular}" in tex and "\\toprule" in tex
    rows = {line.split(" & ")[0]: line.removesuffix(" \\\\").split(" & ")
            for line in tex.splitlines() if " & " in line}
    number = re.compile(r"[-+]?\d+\.\d+")
    best = rows["OPSD (r = 1)"]
    assert best[1] == "2 (+1 failed)" and best[2].startswith("\\textbf{")  # bold: the top mean
    assert [float(x) for x in number.findall(best[2])] == [97.8, 0.2]  # mean $\pm$ half, 1 decimal
    assert [float(x) for x in number.findall(rows["Base model"][2])] == [57.5]  # one seed: no interval
    delta = rows["$\\Delta$ Fixed r = 0.5 (best other r) $-$ OPSD"]
    assert float(number.findall(delta[2])[0]) == -17.4 and delta[3] == "-"
    assert "\\midrule\n$\\Delta$" in tex  # the Δ rows sit under their own rule


def test_tune_trials_are_not_analysed_as_methods(tmp_path):
    """make tune's trial folders (tag tune, optionally tune_lr...) are skipped; the tuned
    ablation's runs (tag tuned) and every other run are kept."""
    from analysis.collect import is_tune_trial, run_folders

    trials = ["opsd-tune-r0.4132-s0", "opsd-tune_lr0.000316-r0.4132-s1"]
    kept = ["opsd-tuned-r0.4132-s0", "opsd-r1-s0", "atesd-s0", "antisd-r1-s2", "base"]
    assert [is_tune_trial(n) for n in trials + kept] == [True] * 2 + [False] * 5
    for name in trials + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "status.json").write_text("{}")
    assert sorted(p.name for p in run_folders(tmp_path)) == sorted(kept)
