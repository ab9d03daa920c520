"""Every metrics.jsonl row (and the final eval) also goes to the trackers in train.report_to.

python -m harness.run method=atesd profile=smoke train.report_to=tensorboard   # <run>/tensorboard/

`train.report_to` is `none` or a comma-separated list of tensorboard, wandb, mlflow.
Scalar names (`scalars(row)`): train rows -> `mismatch/kl_st`, `mismatch/kl_ts`,
`exposure/r`, `entropy/teacher`, `entropy/student`, `train/<key>` (loss,
rollout_accuracy, completion_length, lr, grad_norm, wall_time); probe rows ->
`probe/r<exposure>/kl_st|kl_ts`; controller rows -> `controller/<key without ctrl_>`
(a, b, r, reward, state_mismatch, ...) and `controller/window`; eval rows and the final
eval.json -> `eval/<suite>/average` (final: also `se`, `pass_at_<n>`) and `eval/seconds`.
The step of each scalar is the row's `step` (the final eval: the last optimiser step).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.fields import parse_report_to

if TYPE_CHECKING:
    from harness.config.schema import RunConfig
    from harness.runs.rundir import RunDir

TENSORBOARD_DIR = "tensorboard"
# Train-row keys with a namespace of their own; every other numeric key is `train/<key>`.
TRAIN_NAMES = {
    "exposure": "exposure/r",
    "mismatch_kl_st": "mismatch/kl_st", "mismatch_kl_ts": "mismatch/kl_ts",
    "teacher_entropy": "entropy/teacher", "student_entropy": "entropy/student",
}
NOT_SCALARS = ("step", "kind", "probe_exposure")


def trl_report_to(value: str) -> list[str] | str:
    """What TRL itself reports to: only TensorBoard (its own event files under checkpoints/runs,
    as before). W&B and MLflow get the harness's rows instead, which carry TRL's loss, lr and
    grad_norm too: TRL logging there as well would write `train/loss` twice per step."""
    return ["tensorboard"] if "tensorboard" in parse_report_to(value) else "none"


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """Namespaced scalars of one metrics.jsonl row (None and non-numeric values left out)."""
    kind = row.get("kind")
    out: dict[str, float] = {}
    for key, value in row.items():
        x = number(value)
        if key in NOT_SCALARS or x is None:
            continue
        if kind == "train":
            name = TRAIN_NAMES.get(key, f"train/{key}")
        elif kind == "probe":
            name = f"probe/r{row['probe_exposure']:g}/{key.removeprefix('mismatch_')}"
        elif kind == "controller":
            name = f"controller/{key.removeprefix('ctrl_')}"
        elif kind == "eval":
            name = f"eval/{key.removeprefix('eval_')}/average" if key.startswith("eval_") else f"eval/{key}"
        else:
            name = f"{kind}/{key}"
        out[name] = x
    return out


def eval_summary_scalars(summary: dict[str, Any]) -> dict[str, float]:
    """Scalars of eval.json: eval/<suite>/average, se, pass_at_<n> ('@' is not a valid MLflow name)."""
    out = {}
    for suite, res in summary["suites"].items():
        for key, value in res.items():
            x = number(value)
            if x is not None and key not in ("k", "num_problems"):
                out[f"eval/{suite}/{key.replace('@', '_at_')}"] = x
    if number(summary.get("seconds")) is not None:
        out["eval/seconds"] = float(summary["seconds"])
    return out


class Trackers:
    """The open trackers of one run; `log_row` is the RunDir sink."""

    def __init__(self, cfg: RunConfig, rd: RunDir, resume_step: int | None) -> None:
        self.names = parse_report_to(cfg.train.report_to)
        self.tb = self.wandb = self.mlflow = None
        self.started: list[str] = []  # the W&B / MLflow runs this object opened (and so ends)
        if "tensorboard" in self.names:
            from torch.utils.tensorboard import SummaryWriter

            log_dir = rd.path / TENSORBOARD_DIR
            if resume_step is None:  # a fresh start rewrites every row: drop an earlier attempt's
                shutil.rmtree(log_dir, ignore_errors=True)
            # Resuming rewrites rows after the checkpoint: purge_step hides the earlier
            # attempt's scalars from that step on, as truncate_metrics_after does for the jsonl.
            self.tb = SummaryWriter(str(log_dir), purge_step=None if resume_step is None else resume_step + 1)
        if "wandb" in self.names:
            import wandb

            if wandb.run is None:
                wandb.init(name=cfg.run_name, dir=str(rd.path), config={"run_name": cfg.run_name})
                self.started.append("wandb")
            self.wandb = wandb
        if "mlflow" in self.names:
            import mlflow

            if mlflow.active_run() is None:
                mlflow.start_run(run_name=cfg.run_name)
                self.started.append("mlflow")
            self.mlflow = mlflow

    def log(self, values: dict[str, float], step: int) -> None:
        if not values:
            return
        if self.tb is not None:
            for name, x in values.items():
                self.tb.add_scalar(name, x, global_step=step)
            self.tb.flush()  # like metrics.jsonl: a killed run keeps every row written so far
        if self.wandb is not None:
            self.wandb.log(values, step=step)
        if self.mlflow is not None:
            self.mlflow.log_metrics(values, step=step)

    def log_row(self, row: dict[str, Any]) -> None:
        self.log(scalars(row), int(row["step"]))

    def log_eval_summary(self, summary: dict[str, Any], step: int) -> None:
        self.log(eval_summary_scalars(summary), step)

    def close(self, failed: bool) -> None:
        if self.tb is not None:
            self.tb.close()
        if "wandb" in self.started:
            self.wandb.finish(exit_code=1 if failed else 0)
        if "mlflow" in self.started:
            self.mlflow.end_run(status="FAILED" if failed else "FINISHED")


@contextmanager
def tracking(cfg: RunConfig, rd: RunDir) -> Iterator[Trackers]:
    """Open cfg's trackers, send every metrics row of `rd` to them, close them at the end
    (also on failure). Call inside the training slot: TensorBoard's writer imports torch."""
    from harness.runs.checkpoints import latest_checkpoint

    resume = latest_checkpoint(rd.checkpoints)  # what train_and_eval resumes from
    trackers = Trackers(cfg, rd, int(resume.name.split("-")[1]) if resume else None)
    rd.add_sink(trackers.log_row)
    failed = True
    try:
        yield trackers
        failed = False
    finally:
        rd.remove_sink(trackers.log_row)
        trackers.close(failed)


def read_tensorboard(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """{scalar name: [(step, value), ...]} of a run folder's tensorboard/ (tests, quick looks)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(Path(folder) / TENSORBOARD_DIR), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
