"""One run end to end on the smoke profile: files, mismatch invariants, skip/force, failure.

python -m pytest -q tests/test_run.py
"""

import json

import pytest

from harness.config.settings import compose, compose_resolved
from harness.run import run
from harness.runs.rundir import read_jsonl

FILES = ["config.yaml", "status.json", "metrics.jsonl", "eval.json", "eval_samples.jsonl"]


def _run(tmp_path, *overrides):
    cfg, resolved_yaml = compose_resolved(["profile=smoke", f"results={tmp_path}", *overrides])
    run(cfg, resolved_yaml)
    return tmp_path / cfg.run_name


def _rows(folder, kind="train"):
    return [r for r in read_jsonl(folder / "metrics.jsonl") if r["kind"] == kind]


def test_run_writes_the_contract(tmp_path, smoke_base):
    folder = _run(tmp_path, "exposure=0.5")
    assert folder.name == "opsd-r0.5-s0"
    for f in FILES:
        assert (folder / f).is_file(), f
    assert any((folder / "checkpoints").glob("checkpoint-*/model.safetensors"))
    assert json.loads((folder / "status.json").read_text())["state"] == "done"
    train = _rows(folder)
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    for r in train:
        assert list(r)[0] == "step" and r["exposure"] == 0.5
        for key in ("loss", "mismatch_kl_st", "mismatch_kl_ts", "teacher_entropy",
                    "student_entropy", "rollout_accuracy", "completion_length", "lr", "wall_time"):
            assert key in r, key
    probes = _rows(folder, "probe")
    assert sorted({p["probe_exposure"] for p in probes}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert {p["step"] for p in probes} == {1, 2, 4}  # step 1 and every probe.every=2
    ev = json.loads((folder / "eval.json").read_text())
    assert set(ev["suites"]) == {"easy_k3", "medium_k4", "hard_k5"}


def test_r0_live_teacher_has_zero_mismatch_every_step(tmp_path, smoke_base):
    folder = _run(tmp_path, "exposure=0", "teacher.mode=live")
    train = _rows(folder)
    assert len(train) == 4
    assert all(abs(r["mismatch_kl_st"]) < 1e-5 and abs(r["mismatch_kl_ts"]) < 1e-5 for r in train)
    assert all(abs(p["mismatch_kl_st"]) < 1e-5 for p in _rows(folder, "probe")
               if p["probe_exposure"] == 0.0)


def test_r0_frozen_teacher_zero_only_before_first_update(tmp_path, smoke_base):
    folder = _run(tmp_path, "exposure=0", "teacher.mode=base")
    train = _rows(folder)
    assert abs(train[0]["mismatch_kl_st"]) < 1e-5
    # probe at full exposure sees a different context: mismatch is clearly positive
    assert [p for p in _rows(folder, "probe") if p["probe_exposure"] == 1.0][0]["mismatch_kl_st"] > 1e-3


def test_same_seed_same_metrics_and_periodic_eval_leaves_training_alone(tmp_path, smoke_base):
    a = _run(tmp_path / "a", "exposure=1")
    b = _run(tmp_path / "b", "exposure=1", "eval.every=2")  # evaluates after step 2 too

    def strip(folder):
        return [{k: v for k, v in r.items() if k != "wall_time"}
                for r in read_jsonl(folder / "metrics.jsonl") if r["kind"] != "eval"]

    assert strip(a) == strip(b)
    evals = _rows(b, "eval")
    assert [r["step"] for r in evals] == [2]  # not at the last step: eval.json is that one
    assert {"eval_easy_k3", "eval_medium_k4", "eval_hard_k5"} <= set(evals[0])
    assert all(0.0 <= evals[0][f"eval_{s}"] <= 1.0 for s in ("easy_k3", "medium_k4", "hard_k5"))
    assert not _rows(a, "eval")
    ea, eb = (json.loads((x / "eval.json").read_text())["suites"] for x in (a, b))
    assert ea == eb


def test_relaunch_skips_and_force_keeps_old(tmp_path, smoke_base, capsys):
    folder = _run(tmp_path, "exposure=1")
    before = (folder / "metrics.jsonl").read_text()
    _run(tmp_path, "exposure=1")
    assert "already done" in capsys.readouterr().out
    assert (folder / "metrics.jsonl").read_text() == before
    _run(tmp_path, "exposure=1", "force=true")
    backups = list(tmp_path.glob("opsd-r1-s0.bak-*"))
    assert len(backups) == 1 and (backups[0] / "metrics.jsonl").read_text() == before


def test_failure_marks_status_failed(tmp_path, smoke_base):
    # 1 operation mod 13 has only 507 distinct problems: the suite cannot be drawn.
    with pytest.raises(ValueError, match="cannot draw"):
        _run(tmp_path, "exposure=1", "task.suites=[{name: tiny, num_ops: 1, size: 5000}]")
    status = json.loads((tmp_path / "opsd-r1-s0" / "status.json").read_text())
    assert status["state"] == "failed" and "cannot draw" in status["reason"]


def test_missing_model_path_fails_before_any_folder(tmp_path):
    from harness.config.schema import ConfigError

    with pytest.raises(ConfigError, match="model.path='/nonexistent'"):
        compose(["profile=smoke", "model.path=/nonexistent", f"results={tmp_path}"])
    assert not any(tmp_path.iterdir())


def test_relaunch_with_another_config_is_refused_and_keeps_the_run(tmp_path, smoke_base):
    from harness.config.schema import ConfigError

    folder = _run(tmp_path, "exposure=1")
    before = {f: (folder / f).read_text() for f in ("config.yaml", "metrics.jsonl", "status.json")}
    # same run name, other teacher: skipping would hand back the base-teacher run as "live"
    with pytest.raises(ConfigError, match=r"teacher.mode: 'base' -> 'live'.*tag=<label>"):
        _run(tmp_path, "exposure=1", "teacher.mode=live")
    assert {f: (folder / f).read_text() for f in before} == before
    _run(tmp_path, "exposure=1", "teacher.mode=live", "tag=live")  # a new name is a new run
    assert (tmp_path / "opsd-live-r1-s0" / "eval.json").is_file()
    _run(tmp_path, "exposure=1", "train.report_to=none", "force=false")  # neutral keys: a plain skip


def test_probe_in_chunks_measures_the_same(tmp_path, smoke_base):
    one = _rows(_run(tmp_path / "one", "exposure=1"), "probe")
    # smoke: 4 rollouts a step, so max_rows=4 is one exposure per teacher forward
    chunked = _rows(_run(tmp_path / "chunked", "exposure=1", "probe.max_rows=4"), "probe")
    def keys(rows):
        return [(r["step"], r["probe_exposure"]) for r in rows]

    assert keys(one) == keys(chunked)
    for a, b in zip(one, chunked):
        assert b["mismatch_kl_st"] == pytest.approx(a["mismatch_kl_st"], abs=1e-5)
        assert b["mismatch_kl_ts"] == pytest.approx(a["mismatch_kl_ts"], abs=1e-5)
