"""`make sweep`: a smoke sweep through the submitit local launcher, skip on relaunch, bad input.

python -m pytest -q tests/test_sweep.py
"""

import subprocess
import sys

import pytest

from harness.runs.rundir import read_json

FILES = ["config.yaml", "status.json", "metrics.jsonl", "eval.json", "eval_samples.jsonl"]


def sweep(results, *args, exposures="0,1", overrides=()):
    cmd = [sys.executable, "-m", "harness.front.sweep", "--exposures", exposures, "--seeds", "0",
           "--results", str(results), *args, "--", "profile=smoke", *overrides]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_smoke_sweep_two_exposures_then_skip(tmp_path, smoke_base):
    res = tmp_path / "runs"
    r = sweep(res, overrides=("launcher.local_wave=2",))  # 3 jobs: a wave of 2, then one of 1
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for name in ("opsd-r0-s0", "opsd-r1-s0"):
        for f in FILES:
            assert (res / name / f).is_file(), (name, f)
        assert any((res / name / "checkpoints").iterdir())
        assert read_json(res / name / "status.json")["state"] == "done"
    assert (res / "base" / "eval.json").is_file()
    jobs = [p for p in (res / ".hydra").glob("multirun-*/.submitit/*") if p.name.isdigit()]
    assert len(jobs) == 3  # went through submitit, every job of both waves
    assert "opsd-r0-s0" in r.stdout and "KL(S||T)" in r.stdout  # the closing table
    assert "8/8" in r.stderr  # the progress bar over both runs' 4 steps reached the end
    before = (res / "opsd-r1-s0" / "metrics.jsonl").stat().st_mtime_ns
    r2 = sweep(res)
    assert r2.returncode == 0
    assert (res / "opsd-r1-s0" / "metrics.jsonl").stat().st_mtime_ns == before
    logs = "".join(p.read_text() for p in (res / ".hydra").rglob("*_log.out"))
    assert "already done" in logs


@pytest.mark.parametrize("args,exposures,msg", [
    ([], "1.5", "exposure=1.5 is invalid: must be in [0, 1]"),
    ([], "abc", "exposure: Value 'abc'"),
    ([], "", "exposure: Value ''"),
    (["--seeds", "x"], "0", "seed: Value 'x'"),
    (["--method", "nosuch"], "0", "method/nosuch"),
    (["--launcher", "cloud"], "0", "launcher/cloud"),
])
def test_bad_input_fails_before_launch(tmp_path, args, exposures, msg):
    res = tmp_path / "runs"
    r = sweep(res, *args, exposures=exposures)
    assert r.returncode == 2
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not res.exists()


def test_hydra_multirun_refuses_a_bad_point_before_launch(tmp_path):
    """The sweeper itself (python -m harness.run -m) checks every point, not only make sweep."""
    res = tmp_path / "runs"
    cmd = [sys.executable, "-m", "harness.run", "-m", "profile=smoke", f"results={res}",
           "exposure=0,1.5"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "exposure=1.5 is invalid" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not res.exists()


def test_bad_override_fails_before_launch(tmp_path):
    res = tmp_path / "runs"
    cmd = [sys.executable, "-m", "harness.front.sweep", "--exposures", "0", "--results", str(res),
           "--", "profile=smoke", "teacher.mode=psychic"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "teacher.mode='psychic'" in r.stderr
    assert not res.exists()


def preset_grids(name: str) -> list[dict]:
    from omegaconf import OmegaConf

    preset = OmegaConf.to_container(OmegaConf.load(f"sweeps/experiment/{name}.yaml"))
    return preset["hydra"]["sweeper"]["grids"]


def test_seeds_replace_an_experiment_presets_seeds():
    from harness.front.plan import points

    grids = preset_grids("atesd_vs_fixed")
    got = points(grids, ["results=/tmp/unused"])
    assert len(got) == 5 * 3 + 3
    assert got[0] == ["method=opsd", "exposure=0", "seed=0", "results=/tmp/unused"]
    assert got[-1] == ["method=atesd", "seed=2", "results=/tmp/unused"]
    four = points(grids, ["results=/tmp/unused", "seed=4"])
    assert len(four) == 5 + 1 and all(p[-1] == "seed=4" for p in four)
    swept = points(grids, ["seed=4,5"])
    assert len(swept) == 2 * (5 + 1)


def test_a_bad_sweep_syntax_is_one_line():
    from harness.config.schema import ConfigError
    from harness.front.plan import points

    with pytest.raises(ConfigError, match="only comma lists"):
        points([], ["exposure=interval(0,1)"])


def test_folder_with_another_config_fails_before_launch(tmp_path, smoke_base):
    res = tmp_path / "runs"
    assert sweep(res, exposures="1").returncode == 0
    stamp = (res / "opsd-r1-s0" / "metrics.jsonl").stat().st_mtime_ns
    cmd = [sys.executable, "-m", "harness.front.sweep", "--exposures", "0,1", "--results", str(res),
           "--", "profile=smoke", "loss.beta=1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "loss.beta: 0.5 -> 1.0" in r.stderr and "opsd-r" in r.stderr
    assert not (res / "opsd-r0-s0").exists()  # nothing launched
    assert (res / "opsd-r1-s0" / "metrics.jsonl").stat().st_mtime_ns == stamp


def test_methods_without_a_fixed_exposure_ignore_the_exposure_grid():
    from harness.config.settings import compose
    from harness.front.plan import plan

    def names(method, extra=()):
        jobs = plan([], [f"method={method}", "exposure=0,0.5,1", "seed=0,1", "results=/tmp/unused",
                         "profile=smoke", *extra], compose)
        return [j.cfg.run_name for j in jobs], jobs

    got, jobs = names("atesd")  # was: run names collide
    assert got == ["atesd-s0", "atesd-s1", "base"]
    assert not any(o.startswith("exposure=") for j in jobs for o in j.overrides)
    assert names("random")[0] == ["random-s0", "random-s1", "base"]
    got, jobs = names("opsd")
    assert got[:3] == ["opsd-r0-s0", "opsd-r0-s1", "opsd-r0.5-s0"] and len(got) == 7
    assert jobs[-1].overrides == ["results=/tmp/unused", "profile=smoke", "method=base"]


def test_one_run_name_for_two_configs_is_refused():
    from harness.config.schema import ConfigError
    from harness.config.settings import compose
    from harness.front.plan import plan

    with pytest.raises(ConfigError, match="run names collide: opsd-r1-s0"):
        plan([], ["profile=smoke", "exposure=1", "loss.beta=0,1"], compose)


def test_experiment_preset_plans_one_job_array():
    from harness.config.settings import compose
    from harness.front.plan import plan

    jobs = plan(preset_grids("controller_ablations"), ["experiment=controller_ablations",
                                                     "profile=smoke", "results=/tmp/unused"], compose)
    names = [j.cfg.run_name for j in jobs]
    # ATESD, 7 controller ablations, 3 learning controls, 5 exposure baselines (3 seeds each), base
    assert len(names) == len(set(names)) == 3 + 21 + 9 + 15 + 1
    assert {"atesd-bandit-s2", "random-s0", "schedule-linear_up-s1", "opsd-r1-s0", "base",
            "atesd-paper_controller-s1", "atesd-frozen_policy-s0", "random-initial_beta-s2"} <= set(names)


def test_a_job_waiting_for_its_slot_holds_no_model_libraries():
    """The launcher starts every job of a sweep at once; the Hydra app must import light."""
    code = "import sys, harness.run; print(sorted({'torch', 'transformers', 'trl'} & set(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


@pytest.mark.parametrize("model,hub_id,gpus", [("1p7b", "Qwen/Qwen3-1.7B", 1), ("4b", "Qwen/Qwen3-4B", 1),
                                               ("8b", "Qwen/Qwen3-8B", 2)])
def test_paper_presets_plan_one_array_of_19_runs(model, hub_id, gpus):
    """The paper's presets compose and plan here (they run only on a GPU cluster)."""
    from harness.config.settings import compose
    from harness.front.plan import plan

    name = f"paper_qwen3_{model}"
    jobs = plan(preset_grids(name), [f"experiment={name}", "launcher=slurm",
                                     "results=/tmp/unused_paper"], compose)
    assert len(jobs) == 5 * 3 + 3 + 1 and jobs[-1].cfg.run_name == "base"
    cfg = jobs[0].cfg
    assert (cfg.model.path, cfg.model.lora.r, cfg.launcher.gpus_per_node) == (hub_id, 64, gpus)
    assert cfg.task.kind == "math" and [d.name for d in cfg.task.eval_data] == ["aime24", "aime25", "hmmt25"]
    assert (cfg.train.lr, cfg.train.temperature, cfg.eval.k) == (2e-4, 1.1, 12)
    # The published batch, 32 prompts a step: the global batch, each process a share of it.
    assert cfg.rows_per_step == cfg.train.prompts_per_step == 32 and cfg.rows_per_rank(gpus) == 32 // gpus
    # Trained without thinking, evaluated with it (the public evaluation's setting).
    assert (cfg.task.student_thinking, cfg.eval.thinking) == (False, True)
    # The public OPSD evaluation's sampling (review A1): T 1.0, top-p 0.95, 38,912 new tokens, 40,960 context.
    assert (cfg.eval.temperature, cfg.eval.top_p, cfg.eval.max_new_tokens, cfg.eval.max_model_len) == \
        (1.0, 0.95, 38912, 40960)


def test_paper_table_plans_every_method_and_composition(tmp_path):
    """experiment=paper_table: 12 trained rows x 3 seeds + base, the tuned r read from the
    study's best file; with no study, one line naming make tune."""
    from harness.config.schema import ConfigError
    from harness.config.settings import compose
    from harness.front.plan import plan

    args = ["experiment=paper_table", "profile=smoke", f"results={tmp_path}"]
    with pytest.raises(ConfigError, match="make tune"):
        plan(preset_grids("paper_table"), args, compose)
    (tmp_path / "tune").mkdir()
    (tmp_path / "tune" / "fixed_smoke.best.yaml").write_text("exposure: 0.4132\n")
    names = [j.cfg.run_name for j in plan(preset_grids("paper_table"), args, compose)]
    rows = ("grpo", "antisd-r1", "sdar-r1", "opsd-r1", "opsd-tuned-r0.4132", "atesd",
            "atesd-paper_reward", "atesd_antisd", "atesd_sdar", "target_mismatch", "per_problem",
            "per_problem_antisd")
    assert len(names) == len(set(names)) == 3 * 12 + 1 and names[-1] == "base"
    assert {f"{row}-s{seed}" for row in rows for seed in range(3)} | {"base"} == set(names)
