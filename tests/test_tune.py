"""make tune: search space, result reading, trials table, resume, ablation=fixed_tuned.

python -m pytest -q tests/test_tune.py
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from harness.config.schema import ConfigError, RunConfig
from harness.config.settings import compose
from harness.runs.rundir import RunDir, read_json, write_json
from harness.tune import results as tune_results
from harness.tune.loop import RUN_PARAMS, Setup, best_of, next_batch, open_study
from harness.tune.results import as_csv, as_markdown, read_trial, study_paths, table_rows, tuned_exposure
from harness.tune.space import LR, Space, grid, grids_override, parse_lr_range, run_names
from harness.tune.study import check_overrides, parse_seeds


def setup(tmp_path: Path, **kw) -> Setup:
    args = {"results": str(tmp_path), "study": "s", "seeds": [0], "space": Space(), "batch": 2,
            "trials": 3, "sampler_seed": 0, "launcher": "local", "overrides": ["profile=smoke"]}
    return Setup(**{**args, **kw})


# ---- search space ----
def test_space_draws_r_on_the_run_names_4_decimals_and_lr_only_when_asked():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for space in (Space(), Space((1e-5, 1e-3))):
        for _ in range(30):
            params = space.suggest(study.ask())
            r = params["exposure"]
            assert 0 <= r <= 1 and round(r, 4) == r
            assert (LR in params) == (space.lr_range is not None)
            name = run_names(params, [3])[0]
            if LR in params:
                assert 1e-5 <= params[LR] <= 1e-3 and float(f"{params[LR]:.3g}") == params[LR]
                assert name.startswith("opsd-tune_lr0.0") and name.endswith(f"-r{r:g}-s3")
            else:
                assert name == f"opsd-tune-r{r:g}-s3"
            RunConfig(tag=name.split("-")[1])  # the tag is a valid run-name tag


def test_trial_grids_plan_to_the_trials_run_names(tmp_path):
    """The hydra.sweeper.grids override parses, and the sweep plans exactly the trials' runs
    (train.lr as a nested grid key, flattened by sweep_plan.grid_dims)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from harness.front.plan import plan

    trials = [{"exposure": 0.4132, LR: 0.000316}, {"exposure": 1.0, LR: 3.16e-05}]
    points = [grid(p, s) for p in trials for s in (0, 1)]
    override = OverridesParser.create().parse_overrides([grids_override(points)])[0]
    grids = override.value()
    jobs = plan(grids, [f"results={tmp_path}", "method=opsd", "eval.validation=true", "profile=smoke"],
                compose)
    names = [j.cfg.run_name for j in jobs]
    assert names == [n for p in trials for n in run_names(p, [0, 1])] + ["base"]
    assert [j.cfg.train.lr for j in jobs[:4]] == [0.000316, 0.000316, 3.16e-05, 3.16e-05]
    assert all(j.cfg.eval.validation for j in jobs[:4]) and not jobs[4].cfg.eval.validation


@pytest.mark.parametrize("bad,msg", [
    (["seed=1"], "make tune sets seed itself"), (["exposure=0.5"], "sets exposure itself"),
    (["train.lr=1e-4,2e-4"], "a trial is one setting"), (["eval.validation=false"], "sets eval.validation"),
])
def test_overrides_that_break_a_trial_are_refused(bad, msg):
    with pytest.raises(ConfigError, match=msg):
        check_overrides(bad)
    check_overrides(["train.lr=1e-4", "profile=smoke"])
    with pytest.raises(ConfigError, match="sets train.lr itself"):  # --lr-range searches it
        check_overrides(["train.lr=1e-4"], lr_tuned=True)


def test_bad_seeds_and_lr_ranges_are_one_line():
    for text in ("", "x", "0,0", "-1"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(text)
    for text in ("1e-3", "1e-3,1e-5", "0,1e-3", "a,b"):
        with pytest.raises(ConfigError, match="--lr-range"):
            parse_lr_range(text)
    assert parse_lr_range("") is None and parse_lr_range("1e-5,1e-3") == (1e-5, 1e-3)


# ---- reading results, the table ----
def write_run(root: Path, name: str, state: str, val: float | None) -> None:
    rd = RunDir(root / name)
    rd.path.mkdir(parents=True)
    rd.set_status(state, "" if state == "done" else "NonFiniteError: nan at step 2")
    write_json(rd.path / "eval.json", {"suites": {}})
    if val is not None:
        write_json(rd.path / "val.json", {"suites": {"validation": {"average": val}}})


def test_a_trial_is_the_mean_over_its_seeds_and_fails_naming_its_run(tmp_path):
    write_run(tmp_path, "a-s0", "done", 0.25)
    write_run(tmp_path, "a-s1", "done", 0.75)
    write_run(tmp_path, "b-s0", "failed", None)
    write_run(tmp_path, "c-s0", "done", None)
    assert read_trial(tmp_path, ["a-s0", "a-s1"]).value == 0.5
    bad = read_trial(tmp_path, ["a-s0", "b-s0"])
    assert bad.value is None and bad.reason == "b-s0: NonFiniteError: nan at step 2"
    assert read_trial(tmp_path, ["c-s0"]).reason == "c-s0: done without val.json"
    assert read_trial(tmp_path, ["missing-s0"]).reason == "missing-s0: missing"


def test_table_marks_the_best_and_writes_markdown_and_csv(tmp_path):
    trials = [{"number": 1, "state": "complete", "params": {"exposure": 0.5}, "value": 0.75, "runs": ["x"]},
              {"number": 0, "state": "fail", "params": {"exposure": 0.1}, "value": None, "runs": ["y"],
               "reason": "y: failed"}]
    rows = table_rows(trials, best_number=1)
    assert [r["trial"] for r in rows] == [0, 1] and rows[1]["best"] == "*" and rows[0]["best"] == ""
    md = as_markdown(rows)
    assert md.splitlines()[0] == "| trial | best | state | r | val_average | runs | reason |"
    assert "| 1 | * | complete | 0.5 | 0.75 | x |  |" in md
    back = list(csv.DictReader(io.StringIO(as_csv(rows))))
    assert back[0]["reason"] == "y: failed" and back[1]["val_average"] == "0.75"
    best = {"study": "s", "exposure": 0.5, "value": 0.75, "trial": 1}
    tune_results.write_outputs(tmp_path, "s", rows, best)
    assert tuned_exposure(str(tmp_path), "s") == 0.5
    assert "best: trial 1, r = 0.5" in study_paths(tmp_path, "s")["md"].read_text()


# ---- the study: best, batches, setting ----
def test_best_is_the_highest_validation_average(tmp_path):
    s = setup(tmp_path)
    study = open_study(s)
    for r, value in ((0.1, 0.2), (0.6, 0.9), (0.3, 0.4)):
        t = study.ask()
        t.set_user_attr(RUN_PARAMS, {"exposure": r})
        study.tell(t, value)
    best = best_of(study, s)
    assert best["exposure"] == 0.6 and best["value"] == 0.9 and best["runs"] == ["opsd-tune-r0.6-s0"]


def test_unfinished_trials_of_a_dead_call_come_first_and_the_total_caps_the_batch(tmp_path):
    s = setup(tmp_path, trials=3, batch=2)
    study = open_study(s)
    done = study.ask()
    study.tell(done, 0.1)
    stale = study.ask()  # asked by a call that died before telling it
    stale.set_user_attr(RUN_PARAMS, {"exposure": 0.25})
    batch = next_batch(open_study(s), s)
    assert batch[0] == (stale.number, {"exposure": 0.25}) and len(batch) == 2  # 1 done + 2 = 3
    study = open_study(s)
    for number, _ in batch:
        study.tell(number, 0.0)
    assert next_batch(study, s) == []


def test_a_study_refuses_another_setting(tmp_path):
    open_study(setup(tmp_path))
    with pytest.raises(ConfigError, match="give this setting its own --study"):
        open_study(setup(tmp_path, overrides=["profile=smoke", "train.lr=1e-3"]))


# ---- ablation=fixed_tuned without a study ----
def test_fixed_tuned_without_a_study_is_one_line_naming_make_tune(tmp_path):
    with pytest.raises(ConfigError, match=r"no tuned exposure at .*fixed_smoke.best.yaml; run `make tune"):
        compose(["ablation=fixed_tuned", "profile=smoke", f"results={tmp_path}"])
    for cmd in (["-m", "ablation=fixed_tuned", "seed=0,1"], ["ablation=fixed_tuned"]):
        r = subprocess.run([sys.executable, "-m", "harness.run", *cmd, "profile=smoke",
                            f"results={tmp_path / 'runs'}"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "make tune" in r.stderr
        assert not list((tmp_path / "runs").glob("opsd*")) and not (tmp_path / "runs" / "base").exists()


def test_bad_tune_input_fails_before_anything_is_written(tmp_path):
    r = subprocess.run([sys.executable, "-m", "harness.tune.study", "--trials", "2", "--results",
                        str(tmp_path / "runs"), "--", "profile=smoke", "seed=3"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: seed=3: make tune sets seed itself (--seeds, --results, --launcher; "
        "r and --lr-range are what it searches)"]
    assert not (tmp_path / "runs").exists()


# ---- end to end ----
def tune(results: Path, trials: int, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "harness.tune.study", "--trials", str(trials), "--results", str(results),
           *args, "--", "profile=smoke"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


@pytest.mark.slow  # a whole study, resumed (~30 s): make test-slow
def test_smoke_study_completes_resumes_and_feeds_fixed_tuned(tmp_path, smoke_base):
    res = tmp_path / "runs"
    r = tune(res, 3, "--batch", "3")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    paths = study_paths(res, "fixed_smoke")
    study = optuna.load_study(study_name="fixed_smoke", storage=f"sqlite:///{paths['db']}")
    # The grid's starts first (--start's default): the last two wait in the study for later calls.
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 + ["WAITING"] * 2
    names = [n for t in study.trials[:3] for n in run_names(t.user_attrs[RUN_PARAMS], [0])]
    assert names == ["opsd-tune-r0-s0", "opsd-tune-r0.25-s0", "opsd-tune-r0.5-s0"]
    for name, t in zip(names, study.trials):
        assert read_json(res / name / "status.json")["state"] == "done"
        assert t.value == read_json(res / name / "val.json")["suites"]["validation"]["average"]
    assert not (res / "base" / "val.json").exists()  # the base run is the sweeps' base run
    assert r.stdout.count(" complete ") == 3 and "best r = " in r.stdout  # the table, printed
    states = [row["state"] for row in csv.DictReader(paths["csv"].open())]
    assert states == ["complete"] * 3 + ["waiting"] * 2  # the queued starts are listed too
    stamps = {n: [(res / n / f).stat().st_mtime_ns for f in ("metrics.jsonl", "val.json")] for n in names}

    r2 = tune(res, 4)  # resume: one more trial; the first three are read, not re-run
    assert r2.returncode == 0, r2.stdout[-3000:] + r2.stderr[-3000:]
    study = optuna.load_study(study_name="fixed_smoke", storage=f"sqlite:///{paths['db']}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4 + ["WAITING"]
    assert {n: [(res / n / f).stat().st_mtime_ns for f in ("metrics.jsonl", "val.json")]
            for n in names} == stamps
    fourth = run_names(study.trials[3].user_attrs[RUN_PARAMS], [0])[0]
    assert fourth == "opsd-tune-r0.75-s0" and (res / fourth / "val.json").is_file()
    assert "tune fixed_smoke: trials 3 " in r2.stdout

    best = yaml.safe_load(paths["best"].read_text())
    assert best["exposure"] == study.best_trial.user_attrs[RUN_PARAMS]["exposure"]
    cfg = compose(["ablation=fixed_tuned", "profile=smoke", f"results={res}", "seed=2"])
    assert cfg.exposure == best["exposure"] and cfg.method.name == "opsd"
    assert cfg.run_name == f"opsd-tuned-r{best['exposure']:g}-s2" and not cfg.eval.validation

    r3 = tune(res, 4)  # nothing left to run
    assert r3.returncode == 0 and "tune fixed_smoke: trials" not in r3.stdout, r3.stdout
    study = optuna.load_study(study_name="fixed_smoke", storage=f"sqlite:///{paths['db']}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4 + ["WAITING"]


def test_start_exposures_are_enqueued_once():
    """The fixed grid is tried first: each start r not yet tried or queued is enqueued, once."""
    import optuna

    from harness.tune.loop import enqueue_starts
    from harness.tune.space import Space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    assert enqueue_starts(study, [0.0, 0.5, 1.0]) == [0.0, 0.5, 1.0]
    assert enqueue_starts(study, [0.0, 0.5, 1.0, 0.25]) == [0.25]  # queued ones are not re-added
    trial = study.ask()
    assert Space(None).suggest(trial) == {"exposure": 0.0}  # asked in the order enqueued
    study.tell(trial, 0.3)
    assert enqueue_starts(study, [0.0]) == []  # tried


@pytest.mark.parametrize("text", ["0,1.5", "0.12345", "a"])
def test_bad_start_exposures_are_one_line(text):
    from harness.tune.study import parse_starts

    with pytest.raises(ConfigError, match="--start="):
        parse_starts(text)


def test_a_study_at_a_gap_level_names_its_trials_runs_as_the_runs_are_named():
    """The runs of a study with gap.kind/gap.level (or a reference control) carry the gap in
    their tag; the study reads them under that name (before: `missing`, every trial failed)."""
    from harness.config.settings import compose

    cfg = compose(["gap.kind=horizon", "gap.level=2", "method=opsd", "exposure=0.5", "seed=3", "tag=tune"])
    assert run_names({"exposure": 0.5}, [3], cfg) == [cfg.run_name] == ["opsd-tune_horizon2-r0.5-s3"]
    assert run_names({"exposure": 0.5}, [3]) == ["opsd-tune-r0.5-s3"]  # no gap: as before
