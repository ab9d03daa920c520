"""A resumable evaluation: every finished sampling batch is appended to a log, a restart skips it.

python -m harness.evaluate --model PATH --out DIR      # DIR/eval_progress.jsonl while it runs

The final evaluation of a paper preset samples for hours (38,912 thinking tokens); a SLURM
requeue in the middle used to start it from zero. Here each batch of samples, once drawn, is
one line of `<stem>_progress.jsonl` (flushed and fsynced) with its completions and the RNG state
after it: HF generate draws a suite's batches from one seeded stream, so a restart that skips
the finished batches and restores the RNG state after the last of them draws exactly what an
uninterrupted evaluation draws (tests/test_eval_resume.py). A requeue loses the batch in flight.

Lines carry a key: the model's weights fingerprint, every sampling setting and the suite's
prompts. A log written for another model or other settings is set aside, never reused.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from harness.runs.rundir import write_jsonl


def model_fingerprint(model: torch.nn.Module) -> str:
    """A digest of the weights: float64 sums of each parameter (two moments), cheap on any device.
    The same weights give the same digest; a model trained one step further does not."""
    h = hashlib.sha1()
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            x = p.detach().double()
            h.update(name.encode())
            h.update(f"{x.sum().item():.17g},{x.square().sum().item():.17g}".encode())
    return h.hexdigest()[:16]


def digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def rng_state() -> dict[str, str]:
    """torch's CPU (and CUDA) generator states, as text for a JSON line."""
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state()
    out = {}
    for name, t in states.items():
        buf = io.BytesIO()
        torch.save(t, buf)
        out[name] = base64.b64encode(buf.getvalue()).decode()
    return out


def set_rng_state(states: dict[str, str]) -> None:
    for name, text in states.items():
        t = torch.load(io.BytesIO(base64.b64decode(text)), weights_only=True)
        if name == "cpu":
            torch.set_rng_state(t)
        elif torch.cuda.is_available():
            torch.cuda.set_rng_state(t)


class BatchLog:
    """The finished batches of one prompt set (a suite) under one key."""

    def __init__(self, progress: EvalProgress, key: str) -> None:
        self.progress, self.key = progress, key

    def owns(self, batch: int) -> bool:
        """Whether this process draws `batch` (harness/evaluation/shards.py ShardLog: not always)."""
        return True

    def get(self, batch: int) -> dict[str, Any] | None:
        return self.progress.done.get((self.key, batch))

    def put(self, batch: int, texts: list[str], rng: dict[str, str] | None) -> None:
        self.progress.append({"key": self.key, "batch": batch, "texts": texts, "rng": rng})


class EvalProgress:
    """`path`'s finished batches under `run_key` (the model and the settings)."""

    def __init__(self, path: Path, run_key: str) -> None:
        self.path, self.run_key = Path(path), run_key
        self.done: dict[tuple[str, int], dict[str, Any]] = {}
        self.resumed = 0
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        lines = self.path.read_text().splitlines()
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line cut by a kill: its batch is drawn again
                break
        if rows and rows[0].get("run_key") != self.run_key:
            stale = self.path.with_name(self.path.name + ".stale")
            os.replace(self.path, stale)  # another model or settings: kept aside, never reused
            print(f"note: {self.path.name} is from another model or settings; moved to {stale.name}")
            return
        for row in rows[1:]:
            self.done[(row["key"], row["batch"])] = row
        self.resumed = len(self.done)
        if self.resumed:
            print(f"resuming the evaluation: {self.resumed} finished batch(es) in {self.path}", flush=True)
        # rewrite the readable lines only (a cut last line would corrupt the next append)
        self._rewrite([rows[0], *rows[1:]])

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        write_jsonl(self.path, rows)  # harness/runs/rundir.py: tmp + rename

    def append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.is_file():
            self._rewrite([{"run_key": self.run_key}])
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before the next batch: a requeue loses at most that one
        self.done[(row["key"], row["batch"])] = row

    def suite(self, name: str, prompts: list[str]) -> BatchLog:
        return BatchLog(self, f"{name}:{digest(prompts)}")

    def finish(self) -> None:
        """The evaluation's files are written: the log has served."""
        self.path.unlink(missing_ok=True)
