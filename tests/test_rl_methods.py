"""GRPO, AntiSD, SDAR and their compositions with an exposure source: config axes, names,
labels, and each run end to end on the smoke profile.

python -m pytest -q tests/test_rl_methods.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from harness.config.schema import ConfigError
from harness.config.settings import compose, compose_raw, compose_resolved
from harness.front.plan import plan
from harness.run import run
from harness.runs.naming import method_label
from harness.runs.rundir import flat, read_jsonl, refuse_config_conflict
from harness.runs.runinfo import read_run

FIXTURE = Path(__file__).parent / "fixtures" / "method_configs_before_axes.json"
NEW_SECTIONS = ("grpo", "antisd", "sdar")
FILES = ["config.yaml", "status.json", "metrics.jsonl", "eval.json", "eval_samples.jsonl"]
TRAIN_KEYS = ("rollout_accuracy", "completion_length", "student_entropy", "loss", "lr",
              "grad_norm", "wall_time")


# ---- the two axes and the names ------------------------------------------------------------
def test_old_methods_compose_as_before_the_axes():
    """method=<old name> (and every ablation, experiment): every key of the config before the
    source/loss groups keeps its value, and the run name is the same. Keys added since (the
    three new sections, and new keys of later work, each at its default: test_defaults.py)
    may be there too."""
    before = json.loads(FIXTURE.read_text())
    for overrides, config in before["configs"].items():
        now = flat(OmegaConf.to_container(compose_raw(overrides.split())))
        old = flat(config)
        assert {k: now.get(k, "<missing>") for k in old} == old, overrides
    for overrides, name in before["names"].items():
        assert compose(overrides.split()).run_name == name, overrides


@pytest.mark.parametrize("overrides, name", [
    (["method=grpo"], "grpo-s0"),
    (["method=antisd"], "antisd-r1-s0"),
    (["method=sdar", "exposure=0.5"], "sdar-r0.5-s0"),
    (["source=atesd", "loss=antisd"], "atesd_antisd-s0"),
    (["method=atesd", "loss=sdar"], "atesd_sdar-s0"),
    (["method=opsd", "source=random", "loss=sdar", "seed=2"], "random_sdar-s2"),
    (["ablation=linear_up", "loss=antisd"], "schedule_antisd-linear_up-s0"),
    (["source=atesd"], "atesd-s0"),
])
def test_compositions_are_named_from_the_axes(overrides, name):
    cfg = compose(overrides)
    assert cfg.run_name == name and cfg.method.name == name.split("-")[0]


def test_loss_settings_stay_overrides_next_to_the_loss_group():
    cfg = compose(["loss=sdar", "loss.beta=0.25", "sdar.coef=0.1", "antisd.lam=0.3"])
    assert (cfg.method.loss, cfg.loss.beta, cfg.sdar.coef) == ("sdar", 0.25, 0.1)
    assert cfg.antisd is None  # checked (antisd.lam=-1 still fails), but an sdar run does not keep it
    assert compose(["loss=antisd", "antisd.lam=0.3"]).antisd.lam == 0.3


@pytest.mark.parametrize("overrides, says", [
    (["method=grpo", "source=atesd"], "source='atesd' is invalid: loss=grpo has no teacher"),
    (["loss=grpo"], "source='fixed' is invalid"),
    (["source=none"], "loss='opsd' is invalid: it needs a teacher"),
    (["loss=nope"], "loss/nope"),
    (["method.loss=nope"], "method.loss='nope' is invalid"),
    (["antisd.on_fraction=0.5"], "antisd.on_fraction=0.5 is invalid"),
])
def test_bad_compositions_are_one_line_errors(overrides, says):
    with pytest.raises(ConfigError) as err:
        compose(overrides)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_sweep_drops_the_exposure_grid_for_grpo(tmp_path, smoke_base):
    jobs = plan([], ["method=grpo,antisd", "exposure=0.5,1", "profile=smoke", f"results={tmp_path}"],
                compose)
    assert [j.cfg.run_name for j in jobs] == ["grpo-s0", "antisd-r0.5-s0", "antisd-r1-s0", "base"]
    assert jobs[-1].cfg.method.loss == "opsd"  # the base run drops loss= / source= too


def test_an_old_run_folder_still_loads_and_matches(tmp_path):
    """A config.yaml written before the new sections existed: no conflict, same method."""
    old = json.loads(FIXTURE.read_text())["configs"]["method=atesd"]
    folder = tmp_path / "atesd-s0"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(old))
    refuse_config_conflict(compose(["method=atesd", f"results={tmp_path}"]))
    info = read_run(folder)
    assert (info.method, info.label) == ("atesd", "ATESD")


def test_labels_of_the_new_methods():
    assert method_label("grpo", None, False, math.nan) == "GRPO"
    assert method_label("antisd", None, True, 1.0) == "AntiSD r = 1"
    assert method_label("atesd_antisd", None, False, math.nan) == "ATESD + AntiSD"
    assert method_label("random_sdar", "x", False, math.nan) == "Random r + SDAR [x]"
    assert method_label("per_problem_antisd", None, False, math.nan) == "Per-problem r + AntiSD"
    assert method_label("opsd", None, True, 0.5) == "Fixed r = 0.5"


# ---- end to end on the smoke profile ---------------------------------------------------------
@pytest.mark.parametrize("overrides, name, teacher_keys", [
    (["method=grpo"], "grpo-s0", ()),
    (["method=antisd"], "antisd-r1-s0", ("antisd_gate", "antisd_term", "teacher_entropy_median")),
    (["method=sdar"], "sdar-r1-s0", ("sdar_gate", "sdar_term")),
    (["source=atesd", "loss=antisd"], "atesd_antisd-s0", ("antisd_gate", "antisd_term")),
    (["method=atesd", "loss=sdar"], "atesd_sdar-s0", ("sdar_gate", "sdar_term")),
])
def test_each_method_runs_end_to_end(tmp_path, smoke_base, overrides, name, teacher_keys):
    cfg, resolved = compose_resolved(["profile=smoke", f"results={tmp_path}", "grpo.group_size=2",
                                      "antisd.warmup_steps=2", *overrides])
    run(cfg, resolved)
    folder = tmp_path / name
    for f in FILES:
        assert (folder / f).is_file(), f
    assert yaml.safe_load((folder / "config.yaml").read_text())["method"]["name"] == name.split("-")[0]
    rows = read_jsonl(folder / "metrics.jsonl")
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    for r in train:
        for key in (*TRAIN_KEYS, *teacher_keys):
            assert r.get(key) is not None and math.isfinite(r[key]), (key, r)
        assert ("exposure" in r) == bool(teacher_keys)
        if "antisd_gate" in r:  # the term is bounded by lambda (1/2) log 2, and 0 while off
            assert r["antisd_gate"] in (0.0, 1.0)
            assert 0 <= r["antisd_term"] <= 0.5 * cfg.antisd.lam * math.log(2) * r["antisd_gate"] + 1e-9
        if "sdar_gate" in r:
            assert 0 < r["sdar_gate"] < 1 and r["sdar_term"] >= 0
    if "antisd_gate" in teacher_keys:
        assert train[-1]["antisd_gate_reference"] is not None  # calibrated after 2 warm-up steps
        assert any((folder / "checkpoints").glob("checkpoint-*/antisd_gate.json"))
    if cfg.method.exposure_source == "controller":
        assert any(r["kind"] == "controller" for r in rows)
    info = read_run(folder)
    assert info.method == name.removesuffix("-s0") and info.state == "done"


def test_rl_problems_per_step_default_matches_opsds_rollouts():
    """Null problems_per_step shares OPSD's rollouts a step into groups (16 // 8 = 2), at least
    one problem; a set value wins; 0 is one line naming the key."""
    assert compose(["method=grpo"]).grpo.problems(16) == 2
    assert compose(["method=grpo", "grpo.group_size=4"]).grpo.problems(16) == 4
    assert compose(["method=grpo", "profile=smoke"]).grpo.problems(4) == 1
    assert compose(["method=grpo", "grpo.problems_per_step=5"]).grpo.problems(16) == 5
    with pytest.raises(ConfigError, match="grpo.problems_per_step=0"):
        compose(["grpo.problems_per_step=0"])


def test_frozen_teacher_copy_keeps_the_initial_weights(tmp_path, smoke_base):
    """teacher.mode=base without LoRA: after an optimiser step the teacher's forward still gives
    the initial model's output while the student's moved (a plain deepcopy of the trainer's
    model ran the student's live weights: its instance forward closed over the student)."""
    import torch
    from datasets import Dataset

    from harness.bench import trainers
    from harness.config.settings import compose
    from harness.losses.hidden_states import final_hidden
    from harness.models.tiny import load
    from harness.runs.rundir import RunDir
    from harness.sources.pick import make_source
    from harness.tasks.datasets import TaskData
    from harness.trainers.build import grpo_args
    from harness.trainers.rl import RLTrainer

    cfg = compose(["profile=smoke", "method=sdar", "train.lr=0.05", f"results={tmp_path}"])
    model, tok = load(smoke_base, cfg.model)
    problems, rows = trainers.problems_and_rows(cfg, tok)
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir(parents=True)
    source = make_source(cfg, evaluator=(TaskData(cfg.task), tok))
    trainer = RLTrainer(model=model, args=grpo_args(cfg, str(rd.checkpoints)),
                        train_dataset=Dataset.from_list(rows), processing_class=tok, run_cfg=cfg,
                        problems=problems, exposure_source=source, run_dir=rd)
    trainers.ready(trainer)
    initial, _ = load(smoke_base, cfg.model)
    ids = torch.tensor([tok("1 + 2 = 3 ; 3 x 4 = 12", add_special_tokens=False)["input_ids"]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        before = final_hidden(initial, ids, mask, 4)
    trainers.optimiser_step(trainer, trainers.first_batch(trainer))
    with torch.no_grad():
        teacher = final_hidden(trainer.teacher_model, ids, mask, 4)
        student = final_hidden(trainer.model, ids, mask, 4)
    assert torch.equal(teacher, before)
    assert not torch.allclose(student, before)
