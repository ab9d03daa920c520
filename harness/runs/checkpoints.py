"""TRL checkpoints that carry the exposure source's state: saved last, so a complete one has it.

python -m harness.run method=atesd profile=smoke    # resumes from the newest complete checkpoint
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import TrainerCallback

SOURCE_STATE = "exposure_source.pt"


class SourceCheckpoint(TrainerCallback):
    """Saves the exposure source (controller) state into each TRL checkpoint folder."""

    def __init__(self, source) -> None:
        self.source = source

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:  # several processes: rank 0 writes checkpoints
            return
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        torch.save(self.source.state_dict(), ckpt / SOURCE_STATE)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint: the source state is saved last (on_save), so a
    folder without it is one a kill interrupted, and is not resumed from."""
    ckpts = [p for p in folder.glob("checkpoint-*")
             if (p / SOURCE_STATE).is_file() and (p / "trainer_state.json").is_file()]
    return max(ckpts, key=lambda p: int(p.name.split("-")[1]), default=None)
