"""The ATESD controller figure on real smoke runs: Beta mean and sd against torch, the windows are
the jsonl rows, the figure draws them, its files, and a results folder with no ATESD run.

python -m pytest -q tests/test_controller_plot.py

Two smoke ATESD runs are made here (atesd_results); the no-ATESD folder is the analysis
session's (tests/analysis_runs.py).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from analysis_runs import ROOT, nonempty, run_in_process
from matplotlib.collections import PathCollection

from analysis import figures
from analysis.collect import collect
from analysis.controller_plot import (
    INITIAL_CONCENTRATION,
    NoControllerRows,
    beta_mean_sd,
    controller_figure,
    controller_windows,
    diagnostic_rows,
    diagnostics_figure,
    noise_snr,
)
from harness.runs.rundir import read_jsonl


@pytest.fixture(scope="session")
def results(analysis_results: Path) -> Path:
    return analysis_results


CTRL_STEPS = 5  # hold 2 (smoke): windows end at steps 2, 4 and 5 - the last one is short


@pytest.fixture(scope="module")
def atesd_results(tmp_path_factory, smoke_base) -> Path:
    root = tmp_path_factory.mktemp("atesd") / "runs"
    for seed in (0, 1):
        run_in_process("method=atesd", f"seed={seed}", f"train.steps={CTRL_STEPS}", f"results={root}")
    return root


DIAG_STEPS = 8  # hold 1, W = 1: 8 decisions, the reward SNR logged from the 6th


@pytest.fixture(scope="module")
def diagnostics_results(tmp_path_factory, smoke_base) -> Path:
    root = tmp_path_factory.mktemp("atesd_diag") / "runs"
    run_in_process("method=atesd", "seed=0", f"train.steps={DIAG_STEPS}", "controller.hold=1",
                   "controller.credit_windows=1", f"results={root}")
    return root


def test_diagnostic_rows_are_the_jsonl_rows(diagnostics_results):
    col = collect(diagnostics_results)
    data = diagnostic_rows(col.runs, col.metrics)
    rows = read_jsonl(diagnostics_results / "atesd-s0" / "metrics.jsonl")
    ctrl = [r for r in rows if r["kind"] == "controller"]
    assert list(data["window"]) == list(range(DIAG_STEPS)) == [r["window"] for r in ctrl]
    assert list(data["policy_mean"]) == pytest.approx([r["ctrl_policy_mean"] for r in ctrl])
    assert list(data["concentration"]) == pytest.approx([r["ctrl_concentration"] for r in ctrl])
    assert list(data["reward"]) == pytest.approx([r["ctrl_reward"] for r in ctrl])  # W = 1: every window
    assert list(data["credited"]) == [r["ctrl_credited"] for r in ctrl] == list(range(DIAG_STEPS))
    assert list(data["advantage"]) == pytest.approx([r["ctrl_advantage"] for r in ctrl])
    snr = [r["ctrl_reward_snr"] for r in ctrl]
    assert snr[:5] == [None] * 5 and all(isinstance(x, float) for x in snr[5:])
    assert list(data["snr"][5:]) == pytest.approx(snr[5:]) and data["snr"][:5].isna().all()
    # the first decision is the initial Beta: mean 1/2, concentration 2 + 2 log 2
    assert data["policy_mean"][0] == pytest.approx(0.5)
    assert data["concentration"][0] == pytest.approx(INITIAL_CONCENTRATION) == pytest.approx(3.3863, abs=1e-4)


def test_diagnostics_figure_draws_the_rows(diagnostics_results):
    col = collect(diagnostics_results)
    fig, data = diagnostics_figure(col.runs, col.metrics)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 5  # one method, five diagnostics
    mean_ax, conc_ax, reward_ax, adv_ax, snr_ax = axes
    np.testing.assert_allclose(mean_ax.lines[0].get_ydata(), data["policy_mean"])
    np.testing.assert_allclose(conc_ax.lines[0].get_ydata(), data["concentration"])
    assert conc_ax.lines[1].get_ydata()[0] == pytest.approx(INITIAL_CONCENTRATION)  # the reference line
    dots = np.concatenate([c.get_offsets() for c in reward_ax.collections if isinstance(c, PathCollection)])
    np.testing.assert_allclose(dots, np.c_[data["credited"], data["reward"]])
    np.testing.assert_allclose(adv_ax.lines[0].get_ydata(), data["advantage"])
    np.testing.assert_allclose(snr_ax.lines[0].get_ydata(), data["snr"])
    noise = snr_ax.lines[1]  # pure noise after n credited decisions, drawn at window n - 1
    np.testing.assert_allclose(noise.get_ydata(), noise_snr(noise.get_xdata() + 1.0))
    assert noise_snr(np.array([6.0]))[0] == pytest.approx(1.0)  # sqrt(2 / 2)
    assert mean_ax.get_title(loc="left").startswith("policy mean")


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
    assert nonempty(tmp_path / "ctrl.png", b"\x89PNG") and nonempty(tmp_path / "ctrl.pdf", b"%PDF")
    diag = tmp_path / "ctrl_diagnostics"
    want = f"wrote {tmp_path / 'ctrl.png'}, {tmp_path / 'ctrl.pdf'}, {diag}.png, {diag}.pdf"
    assert r.stdout.strip() == want
    assert nonempty(tmp_path / "ctrl_diagnostics.png", b"\x89PNG")
    figures.main(["--results", str(atesd_results), "--out", str(tmp_path / "all")])  # make figures
    assert f"controller figure: {tmp_path / 'all' / 'figures' / 'controller.png'}" in capsys.readouterr().out
    assert nonempty(tmp_path / "all" / "figures" / "controller.png", b"\x89PNG")
    assert nonempty(tmp_path / "all" / "figures" / "controller.pdf", b"%PDF")
    assert nonempty(tmp_path / "all" / "figures" / "controller_diagnostics.png", b"\x89PNG")


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

