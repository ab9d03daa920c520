"""Data-parallel evaluation: every rank of a run samples its share, rank 0 grades and writes.

python -m pytest -q tests/test_eval_shards.py

The paper's evaluation (38,912 thinking tokens, 12 samples, three suites) is hours of sampling;
on one GPU of an 8-GPU job the other seven would wait. Here each rank draws its own units into
its own log (`<stem>.rank<r>.jsonl`, the resumable format of harness/evaluation/progress.py);
rank 0 then merges every rank's finished batches into its log and runs the ordinary evaluation,
which finds every batch done and only grades and writes. So:
- the samples do not depend on the world size: a unit is drawn exactly as a one-process
  evaluation draws it. On HF generate a unit is a whole suite (its batches are one seeded RNG
  stream, torch.manual_seed at the suite's start); on vLLM a unit is one piece of
  eval.batch_size sequences (every prompt has its own seed, seed + its index);
- a requeue resumes each rank's log: at most the units in flight are drawn again;
- ranks that find nothing of theirs left wait at the same barrier as before.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from harness.evaluation.progress import BatchLog, EvalProgress


@dataclass(frozen=True)
class Shard:
    """This rank's share: unit u belongs to rank u % world."""

    rank: int
    world: int

    def owns(self, unit: int) -> bool:
        return unit % self.world == self.rank

    def log_path(self, progress_path: Path) -> Path:
        """This rank's log beside the run's (eval_progress.jsonl -> eval_progress.rank1.jsonl)."""
        return progress_path.with_name(f"{progress_path.stem}.rank{self.rank}{progress_path.suffix}")


class ShardLog(BatchLog):
    """A suite's BatchLog that also says which pieces this rank draws (the others are left out:
    the vLLM path appends empty placeholders for them, never graded)."""

    def __init__(self, log: BatchLog, shard: Shard, first_unit: int) -> None:
        super().__init__(log.progress, log.key)
        self.shard, self.first_unit = shard, first_unit

    def owns(self, batch: int) -> bool:
        return self.shard.owns(self.first_unit + batch)


def pieces(n_prompts: int, piece: int) -> int:
    """vLLM pieces of a suite of n_prompts prompts, `piece` prompts each."""
    return max(1, math.ceil(n_prompts / max(1, piece)))


def rank_logs(progress_path: Path, world: int) -> list[Path]:
    return [Shard(r, world).log_path(progress_path) for r in range(world)]


def merge_rank_logs(progress_path: Path, world: int, run_key: str) -> int:
    """Append every rank's finished batches (written under run_key) to rank 0's log at
    progress_path; the number of batches taken. A rank log of another key is ignored."""
    progress = EvalProgress(progress_path, run_key)
    taken = 0
    for path in rank_logs(progress_path, world):
        for row in read_rows(path, run_key):
            if (row["key"], row["batch"]) not in progress.done:
                progress.append(row)
                taken += 1
    return taken


def read_rows(path: Path, run_key: str) -> list[dict]:
    """The batch rows of a rank log written under run_key ([] for another key or no file);
    a line cut by a kill ends the readable rows."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            break
    if not rows or rows[0].get("run_key") != run_key:
        return []
    return rows[1:]


def remove_rank_logs(progress_path: Path, world: int) -> None:
    for path in rank_logs(progress_path, world):
        path.unlink(missing_ok=True)
