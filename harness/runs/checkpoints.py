"""TRL checkpoints that are complete or absent: every file written, then marked, then rotated.

python -m harness.run method=atesd profile=smoke    # resumes from the newest complete checkpoint

A checkpoint folder is written in this order (the trainer's `_save_checkpoint`, then `on_save`):
1. the trainer's files (weights or adapter, optimizer, scheduler, RNG state of every rank,
   trainer_state.json; loss=antisd its gate, harness/trainers/rl.py), on every rank;
2. after all ranks have written theirs, rank 0 writes the exposure source's state
   (`exposure_source.pt`) and then the COMPLETE marker, atomically (tmp + rename);
3. only then the older checkpoints are removed, keeping the newest KEEP complete ones.
transformers' own rotation is off (harness/trainers/build.py: save_total_limit=None): it ran
before on_save, so a requeue signal landing in between left no complete checkpoint and the
next start wiped the run. A kill anywhere in 1-3 leaves the previous complete checkpoint, and
`latest_checkpoint` (what a run resumes from) takes only marked ones.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from transformers import TrainerCallback

from harness.runs.rundir import atomic_write

SOURCE_STATE = "exposure_source.pt"
COMPLETE = "COMPLETE"  # written last into a checkpoint folder: every other file is there
KEEP = 1  # complete checkpoints kept after a save (what save_total_limit=1 kept before)


class SourceCheckpoint(TrainerCallback):
    """Completes each TRL checkpoint: the exposure source's state, the marker, the rotation."""

    def __init__(self, source, keep: int = KEEP) -> None:
        self.source = source
        self.keep = keep  # train.keep_checkpoints (0: all; harness.evaluate --checkpoints all)

    def on_save(self, args, state, control, **kwargs):
        wait_for_every_rank()  # each rank writes its own rng_state_<rank>.pth into the folder
        if not state.is_world_process_zero:  # several processes: rank 0 completes checkpoints
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        tmp = ckpt / f".{SOURCE_STATE}.tmp{os.getpid()}"
        torch.save(self.source.state_dict(), tmp)
        os.replace(tmp, ckpt / SOURCE_STATE)  # whole or absent (see latest_checkpoint's older folders)
        mark_complete(ckpt)
        if self.keep:
            rotate(ckpt.parent, self.keep)


def wait_for_every_rank() -> None:
    """A barrier in a run of several processes (every rank runs on_save); nothing in one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def mark_complete(ckpt: Path) -> None:
    """The COMPLETE marker, renamed into place: it exists whole or not at all."""
    atomic_write(ckpt / COMPLETE, f"{ckpt.name}\n")


def is_complete(ckpt: Path) -> bool:
    return (ckpt / COMPLETE).is_file()


def step_of(ckpt: Path) -> int:
    return int(ckpt.name.split("-")[1])


def checkpoints(folder: Path) -> list[Path]:
    """folder's checkpoint-<step> folders, oldest first."""
    return sorted((p for p in Path(folder).glob("checkpoint-*") if p.name.split("-")[1].isdigit()),
                  key=step_of)


def rotate(folder: Path, keep: int) -> None:
    """Remove every checkpoint older than the newest `keep` complete ones (complete or not:
    an incomplete older one is an interrupted save). Nothing newer is touched."""
    complete = [p for p in checkpoints(folder) if is_complete(p)]
    if len(complete) < keep:
        return
    oldest_kept = step_of(complete[-keep])
    for p in checkpoints(folder):
        if step_of(p) < oldest_kept:
            (p / COMPLETE).unlink(missing_ok=True)  # unmarked first: a half-removed one is never taken
            shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint (COMPLETE written): a folder without the marker is one a
    kill interrupted, and is not resumed from. A run folder from before the marker existed has
    none marked: there the newest holding the source state (saved last then) is taken, rather
    than the run being started afresh."""
    ckpts = checkpoints(folder)
    complete = [p for p in ckpts if is_complete(p)] or [
        p for p in ckpts if (p / SOURCE_STATE).is_file() and (p / "trainer_state.json").is_file()]
    return complete[-1] if complete else None
