"""Analysis on real smoke runs: tables against eval files, CI, marked failures, figures, bad input.

python -m pytest -q tests/test_analysis.py

The results folder is built once per session from real smoke-profile runs: a Hydra
multirun (exposure 0 and 1 x seeds 0 and 1, submitit local launcher), the base model's
evaluation, a run that fails (its model folder is broken), and a run killed with
SIGKILL mid-training (its status stays "running", its metrics stop mid-way; a
truncated last line is then appended, as a writer killed mid-row leaves it). It has
no ATESD run; the controller figure's tests use their own two smoke ATESD runs.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection
from omegaconf import OmegaConf
from scipy import stats

from analysis import figures
from analysis.cli import AnalysisError
from analysis.collect import collect, run_info
from analysis.comparable import split_comparable
from analysis.controller_plot import (
    NoControllerRows,
    beta_mean_sd,
    controller_figure,
    controller_windows,
)
from analysis.plot_mismatch import sweep_points, sweep_summary
from analysis.stats import mean_ci
from analysis.tables import MEAN, AverageTable, Cell, average_table, to_latex, to_markdown
from harness.config.schema import to_run_config
from harness.config.settings import compose_raw
from harness.run import run
from harness.runs.rundir import read_json, read_jsonl
from harness.runs.runinfo import FINAL_FRACTION

ROOT = Path(__file__).resolve().parent.parent
DONE = ["opsd-r0-s0", "opsd-r0-s1", "opsd-r1-s0", "opsd-r1-s1", "base"]
FAILED, KILLED = "opsd-r1-s2", "opsd-r0.5-s0"
SUITES = ["easy_k3", "medium_k4", "hard_k5"]


def _run_in_process(*overrides: str) -> None:
    """One run exactly as `python -m harness.run` makes it (resolved config.yaml included)."""
    raw = compose_raw(["profile=smoke", *overrides])
    run(to_run_config(raw), OmegaConf.to_yaml(raw, resolve=True))


def _train_rows(folder: Path) -> int:
    return sum(1 for r in read_jsonl(folder / "metrics.jsonl") if r.get("kind") == "train")


def _start_killable(root: Path) -> subprocess.Popen:
    # A long run outside the slot cap, so it trains alongside the sweep until it is killed.
    cmd = [sys.executable, "-m", "harness.run", "profile=smoke", "exposure=0.5", "seed=0",
           "train.steps=400", "launcher.max_parallel=0", f"results={root}"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_after_two_steps(proc: subprocess.Popen, folder: Path, timeout: float = 240) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        if (folder / "metrics.jsonl").exists() and _train_rows(folder) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run to kill ended on its own"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="session")
def results(tmp_path_factory, smoke_base) -> Path:
    root = tmp_path_factory.mktemp("analysis") / "runs"
    killable = _start_killable(root)
    sweep = subprocess.Popen([sys.executable, "-m", "harness.run", "-m", "profile=smoke", "exposure=0,1",
                              "seed=0,1", f"results={root}"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    _kill_after_two_steps(killable, root / KILLED)
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-3000:]
    with open(root / KILLED / "metrics.jsonl", "a") as f:
        f.write('{"step": 999, "kind": "tra')  # a writer killed mid-row
    _run_in_process("method=base", f"results={root}")
    broken = root.parent / "broken_model"
    shutil.copytree(smoke_base, broken)  # passes the checks before launch (config, tokenizer) ...
    (broken / "model.safetensors").write_bytes(b"not safetensors")  # ... and fails to load
    with pytest.raises(Exception):  # noqa: B017 - whichever error loading raises; status is what matters
        _run_in_process("exposure=1", "seed=2", f"model.path={broken}", f"results={root}")
    return root


@pytest.fixture(scope="session")
def collected(results):
    return collect(results, refresh=True)


def _eval_average(results: Path, run_name: str, suite: str) -> float:
    return read_json(results / run_name / "eval.json")["suites"][suite]["average"]


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def _copy_runs(src: Path, dst: Path, names: list[str]) -> Path:
    for n in names:
        shutil.copytree(src / n, dst / n, ignore=shutil.ignore_patterns("checkpoints"))
    return dst


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
    root = _copy_runs(results, tmp_path / "runs", ["opsd-r0-s0", "opsd-r1-s0", "base"])
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
            vals = [100 * _eval_average(results, n, suite) for n in names]
            cell = table.cells[method][suite]
            assert cell.n == 2 and cell.mean == pytest.approx(np.mean(vals))
            assert cell.half == pytest.approx(t975 * np.std(vals, ddof=1) / math.sqrt(2))
        per_run = [100 * np.mean([_eval_average(results, n, s) for s in SUITES]) for n in names]
        assert table.cells[method][MEAN].mean == pytest.approx(np.mean(per_run))
    base = table.cells["base"]["easy_k3"]
    assert base.n == 1 and base.mean == pytest.approx(100 * _eval_average(results, "base", "easy_k3"))
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


# ---- the commands -------------------------------------------------------------------------------
def _nonempty(path: Path, magic: bytes) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes().startswith(magic)


def test_figures_command_writes_every_file(results, tmp_path):
    out = tmp_path / "out"
    r = _cli("analysis.figures", "--results", str(results), "--out", str(out))
    assert r.returncode == 0, r.stderr
    for stem in ["mismatch_vs_exposure", "training_curves"]:
        assert _nonempty(out / "figures" / f"{stem}.png", b"\x89PNG")
        assert _nonempty(out / "figures" / f"{stem}.pdf", b"%PDF")
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
    assert _nonempty(tmp_path / "fig.png", b"\x89PNG") and _nonempty(tmp_path / "fig.pdf", b"%PDF")
    lines = r.stdout.strip().splitlines()
    assert str(tmp_path / "fig.png") in lines[0] and lines[-1].startswith("verdict: ")


def _one_error_line(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def test_missing_and_empty_results_folder(tmp_path):
    _one_error_line(_cli("analysis.figures", "--results", str(tmp_path / "nope")), "does not exist")
    (tmp_path / "empty").mkdir()
    _one_error_line(_cli("analysis.tables", "--results", str(tmp_path / "empty")), "no run folders")


def test_no_finished_run(results, tmp_path):
    root = _copy_runs(results, tmp_path / "runs", [FAILED, KILLED])
    _one_error_line(_cli("analysis.figures", "--results", str(root)), "no finished run",
                    "1 failed", "1 running")
    _one_error_line(_cli("analysis.tables", "--results", str(root)), "no finished run")


def test_mixed_task_configs_refused_unless_grouped(results, tmp_path, smoke_base):
    root = _copy_runs(results, tmp_path / "runs", ["opsd-r0-s0", "opsd-r1-s0", "base"])
    # A real run on another task config (validation set size), same base model folder.
    _run_in_process("exposure=1", "tag=val4", "task.val_size=4", f"model.path={smoke_base}",
                    f"results={root}")
    with pytest.raises(AnalysisError, match="task.val_size"):
        split_comparable(collect(root).runs)
    _one_error_line(_cli("analysis.figures", "--results", str(root)), "task.val_size", "--group-by")
    r = _cli("analysis.figures", "--results", str(root), "--group-by", "task.val_size")
    assert r.returncode == 0, r.stderr
    assert "[task.val_size=4]" in r.stdout and "[task.val_size=8]" in r.stdout
    assert len(list((root / "tables").glob("average2-task.val_size=*.md"))) == 2
    assert len(list((root / "figures").glob("mismatch_vs_exposure-*.png"))) == 2
    bad = _cli("analysis.tables", "--results", str(root), "--group-by", "task.nosuch")
    _one_error_line(bad, "task.nosuch")



# ---- the controller figure ----------------------------------------------------------------------
CTRL_STEPS = 5  # hold 2 (smoke): windows end at steps 2, 4 and 5 - the last one is short


@pytest.fixture(scope="module")
def atesd_results(tmp_path_factory, smoke_base) -> Path:
    root = tmp_path_factory.mktemp("atesd") / "runs"
    for seed in (0, 1):
        _run_in_process("method=atesd", f"seed={seed}", f"train.steps={CTRL_STEPS}", f"results={root}")
    return root


def test_beta_mean_sd_matches_torch():
    a = torch.tensor([1.0, 1.0, 1.6931, 3.5, 20.0, 1.0, 250.0])
    b = torch.tensor([1.0, 7.0, 1.6931, 1.2, 20.0, 90.0, 3.0])
    mean, sd = beta_mean_sd(a.numpy(), b.numpy())
    beta = torch.distributions.Beta(a.double(), b.double())
    assert mean == pytest.approx(beta.mean.numpy(), rel=1e-12)
    assert sd == pytest.approx(beta.stddev.numpy(), rel=1e-12)
    one = beta_mean_sd(2.0, 3.0)  # scalars too
    assert float(one[0]) == pytest.approx(0.4) and float(one[1]) == pytest.approx(math.sqrt(6 / 150))


def test_controller_windows_are_the_jsonl_rows(atesd_results):
    col = collect(atesd_results)
    data = controller_windows(col.runs, col.metrics)
    assert sorted(data["run"].unique()) == ["atesd-s0", "atesd-s1"]
    for name in ("atesd-s0", "atesd-s1"):
        rows = read_jsonl(atesd_results / name / "metrics.jsonl")
        ctrl = [r for r in rows if r["kind"] == "controller"]
        mine = data[data["run"] == name]
        assert list(mine["step"]) == [r["step"] for r in ctrl] == [2, 4, 5]
        assert list(mine["start"]) == [0, 2, 4]
        for key in ("window", "ctrl_r", "ctrl_a", "ctrl_b"):
            assert list(mine[key]) == [r[key] for r in ctrl], key
        mean, sd = beta_mean_sd([r["ctrl_a"] for r in ctrl], [r["ctrl_b"] for r in ctrl])
        assert list(mine["beta_mean"]) == pytest.approx(mean) and list(mine["beta_sd"]) == pytest.approx(sd)
        for w in mine.itertuples():  # the window's train steps ran at the r drawn for it
            assert {r["exposure"] for r in rows if r["kind"] == "train" and w.start < r["step"] <= w.step} \
                == {w.ctrl_r}
    assert (data["method"] == "atesd").all() and (data["state"] == "done").all()


def test_controller_figure_draws_the_windows(atesd_results):
    col = collect(atesd_results)
    fig, data = controller_figure(col.runs, col.metrics)
    (ax,) = [a for a in fig.axes if a.get_visible()]  # one method: one panel
    assert ax.get_title(loc="left") == "ATESD" and ax.get_ylim() == (0.0, 1.0)
    assert ax.get_ylabel() == "teacher exposure r" and ax.get_xlabel() == "optimiser step"
    dots = np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
    want = np.concatenate([np.c_[(g["start"] + g["step"]) / 2, g["ctrl_r"]] for _, g in data.groupby("run")])
    np.testing.assert_allclose(sorted(map(tuple, dots)), sorted(map(tuple, want)))
    lines = sorted(tuple(line.get_ydata()[:-1]) for line in ax.lines)  # the held value repeats at the end
    np.testing.assert_allclose(lines, sorted(tuple(g["beta_mean"]) for _, g in data.groupby("run")))
    legend_text = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"seed 0", "seed 1", "± 1 sd of Beta(a, b)"} <= set(legend_text)


def test_controller_figure_files(atesd_results, tmp_path, capsys):
    r = subprocess.run([sys.executable, "analysis/controller_plot.py", "--results", str(atesd_results),
                        "--out", str(tmp_path / "ctrl.png")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert _nonempty(tmp_path / "ctrl.png", b"\x89PNG") and _nonempty(tmp_path / "ctrl.pdf", b"%PDF")
    assert r.stdout.strip() == f"wrote {tmp_path / 'ctrl.png'}, {tmp_path / 'ctrl.pdf'}"
    figures.main(["--results", str(atesd_results), "--out", str(tmp_path / "all")])  # make figures
    assert f"controller figure: {tmp_path / 'all' / 'figures' / 'controller.png'}" in capsys.readouterr().out
    assert _nonempty(tmp_path / "all" / "figures" / "controller.png", b"\x89PNG")
    assert _nonempty(tmp_path / "all" / "figures" / "controller.pdf", b"%PDF")


def test_no_controller_rows_is_one_line_and_no_file(results, tmp_path):
    r = subprocess.run([sys.executable, "analysis/controller_plot.py", "--results", str(results),
                        "--out", str(tmp_path / "ctrl")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{results}: no ATESD run: no controller rows in metrics.jsonl; " \
                               "no controller figure written"
    assert not list(tmp_path.iterdir())
    col = collect(results)
    with pytest.raises(NoControllerRows, match="no ATESD run"):
        controller_windows(col.runs, col.metrics)


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


@pytest.mark.parametrize("module", ["plot_mismatch", "tables", "curves", "controller_plot", "figures",
                                    "collect"])
def test_commands_run_as_script_and_as_module(module):
    for cmd in ([sys.executable, f"analysis/{module}.py", "--help"],
                [sys.executable, "-m", f"analysis.{module}", "--help"]):
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "--results" in r.stdout, (cmd, r.stderr)


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
