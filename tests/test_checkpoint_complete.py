"""A checkpoint is complete or absent: written, marked, then rotated (harness/runs/checkpoints.py).

python -m pytest -q tests/test_checkpoint_complete.py

The review's window (B6): transformers rotated the older checkpoint away at the end of its
`_save_checkpoint`, before `on_save` wrote exposure_source.pt into the new one. A requeue
(submitit raises SystemExit) landing there left no complete checkpoint, and the next start
wiped the run. Here that SystemExit is raised at exactly that point of a real smoke run, and
the relaunch resumes from the older checkpoint, writing every step's row once.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.config.settings import compose, compose_resolved
from harness.run import run
from harness.runs import checkpoints
from harness.runs.checkpoints import COMPLETE, SOURCE_STATE, SourceCheckpoint, latest_checkpoint, rotate
from harness.runs.rundir import read_json, read_jsonl

RUN = ["profile=smoke", "exposure=1", "train.steps=2", "train.checkpoint_every=1", "probe.every=0",
       "eval.k=1"]


def launch(results: Path, *extra: str) -> Path:
    cfg, resolved_yaml = compose_resolved([*RUN, f"results={results}", *extra])
    run(cfg, resolved_yaml)
    return results / cfg.run_name


def requeue_at(step: int):
    """SystemExit, as submitit's requeue handler raises it, as `step`'s checkpoint reaches on_save:
    the trainer's files are written (and, before this fix, the older checkpoint rotated away)."""
    on_save = SourceCheckpoint.on_save

    def interrupted(self, args, state, control, **kwargs):
        if state.global_step == step:
            raise SystemExit(-1)
        return on_save(self, args, state, control, **kwargs)

    return interrupted


def train_rows(folder: Path) -> list[dict]:
    return [r for r in read_jsonl(folder / "metrics.jsonl") if r["kind"] == "train"]


def test_a_requeue_before_the_new_checkpoint_is_complete_resumes_from_the_older(
        tmp_path, smoke_base, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(SourceCheckpoint, "on_save", requeue_at(2))
        with pytest.raises(SystemExit):
            launch(tmp_path)
    folder = tmp_path / "opsd-r1-s0"
    ckpts = folder / "checkpoints"
    assert (ckpts / "checkpoint-2" / "trainer_state.json").is_file()  # the trainer's files: written
    assert not (ckpts / "checkpoint-2" / COMPLETE).exists()
    assert (ckpts / "checkpoint-1" / COMPLETE).is_file()  # the older one: still there, complete
    assert latest_checkpoint(ckpts) == ckpts / "checkpoint-1"
    first = train_rows(folder)
    assert [r["step"] for r in first] == [1, 2]

    launch(tmp_path)
    status = read_json(folder / "status.json")
    assert status["state"] == "done" and status["starts"] == 2
    rows = train_rows(folder)
    assert [r["step"] for r in rows] == [1, 2]  # each step once
    assert rows[0] == first[0]  # step 1 kept as written (wall_time too): resumed, not redone
    assert [p.name for p in checkpoints.checkpoints(ckpts)] == ["checkpoint-2"]  # rotated after
    assert (ckpts / "checkpoint-2" / COMPLETE).is_file() and (ckpts / "checkpoint-2" / SOURCE_STATE).is_file()


def test_checkpoint_every_0_saves_the_last_step_only(tmp_path, smoke_base):
    folder = launch(tmp_path, "train.checkpoint_every=0")
    ckpts = folder / "checkpoints"
    assert [p.name for p in checkpoints.checkpoints(ckpts)] == ["checkpoint-2"]
    assert latest_checkpoint(ckpts) == ckpts / "checkpoint-2"


# --- the order inside on_save, on checkpoint folders alone ------------------------------------------

class Source:
    def state_dict(self) -> dict:
        return {"r": 0.5}


def saved(folder: Path, step: int, complete: bool) -> Path:
    """checkpoint-<step> as the trainer leaves it (complete: as on_save then completes it)."""
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    if complete:
        (ckpt / SOURCE_STATE).write_text("x")
        (ckpt / COMPLETE).write_text(ckpt.name)
    return ckpt


def on_save(folder: Path, step: int) -> None:
    args = SimpleNamespace(output_dir=str(folder))
    state = SimpleNamespace(global_step=step, is_world_process_zero=True)
    SourceCheckpoint(Source()).on_save(args, state, None)


def test_a_kill_before_the_marker_keeps_the_older_checkpoint(tmp_path, monkeypatch):
    saved(tmp_path, 2, complete=True)
    saved(tmp_path, 4, complete=False)

    def killed(ckpt):
        raise SystemExit(-1)

    monkeypatch.setattr(checkpoints, "mark_complete", killed)
    with pytest.raises(SystemExit):
        on_save(tmp_path, 4)
    assert (tmp_path / "checkpoint-4" / SOURCE_STATE).is_file()  # written, but not marked
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-2"  # and not rotated away
    monkeypatch.undo()
    on_save(tmp_path, 4)
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert not (tmp_path / "checkpoint-2").exists()


def test_rotation_keeps_the_newest_complete_and_nothing_newer_is_touched(tmp_path):
    for step, complete in ((1, True), (2, False), (3, True), (4, False)):
        saved(tmp_path, step, complete)
    rotate(tmp_path, keep=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3", "checkpoint-4"]
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-3"
    assert latest_checkpoint(tmp_path / "absent") is None


def test_a_folder_from_before_the_marker_resumes_from_its_newest_with_the_source_state(tmp_path):
    for step in (2, 4):
        ckpt = saved(tmp_path, step, complete=False)
        if step == 2:
            (ckpt / SOURCE_STATE).write_text("x")
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-2"


def test_the_trainer_arguments_leave_rotation_to_on_save_and_save_the_last_step():
    from harness.trainers.build import sdft_args

    args = sdft_args(compose(["profile=smoke", "train.checkpoint_every=0"]), "OUT")
    assert args.save_total_limit is None
    assert (args.save_strategy, args.save_steps) == ("steps", args.max_steps)
