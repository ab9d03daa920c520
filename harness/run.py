"""One run: train (OPSD, or GRPO and its student losses), evaluate, write the run folder.

python -m harness.run method=opsd exposure=0.5 seed=0 profile=smoke [results=DIR] [force=true]

A finished run (status done + eval.json) is skipped unless force=true (the old folder
is then kept as <name>.bak-<time>). An interrupted run resumes from checkpoints/.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

import harness.config.hydra_store  # noqa: F401 - registers run_defaults and the sweeper's config
import harness.front.grid_sweeper  # noqa: F401 - registers the sweeper class (Hydra plugin)
from harness.compute.distributed import (
    export_submitit_env,
    finish,
    init_process_group,
    is_main,
    main_decides,
    world,
)
from harness.compute.failfast import Attempt, guarded
from harness.config.schema import ConfigError, RunConfig, to_run_config
from harness.config.settings import CONFIG_DIR, fail, stored_yaml
from harness.prompts.templates import Prompts
from harness.runs.identity import RunIdentity
from harness.runs.rundir import RunDir, atomic_write, refuse_config_conflict, write_eval
from harness.runs.runlock import hold
from harness.runs.slots import slot
from harness.trainers.trackers import tracking

# torch, transformers and TRL are imported inside train_and_eval, after the job holds its
# training slot: a launcher starts every job of a sweep at once, and a job waiting for a
# slot should hold no model libraries in memory.


def train_rows(cfg: RunConfig, data, prompts: Prompts) -> tuple[list[dict], dict]:
    """The trainer's dataset: student prompts (harness/prompts/templates.py), the problem id as the
    privileged context (the trainer cuts its reference at the exposure in force)."""
    from harness.tasks.training import training_problems

    # prompts_per_step is the global batch: the processes of a run share each step's prompts.
    n_prompts = cfg.train.steps * cfg.train.prompts_per_step
    problems = training_problems(cfg, data, n_prompts)
    rows = [{"prompt": prompts.student(p), "privileged_context": p.id} for p in problems]
    return rows, {p.id: p for p in problems}


def train_and_eval(cfg: RunConfig, rd: RunDir, base_path: Path | None,
                   observers: Sequence[Any] = ()) -> dict:
    """base_path: the resolved base model, None when it is to be built (resolve_base);
    observers: more TrainerCallbacks (tests/dist_worker.py records what each rank saw)."""
    import torch
    from transformers import set_seed

    from harness.models.base import build
    from harness.models.tiny import load
    from harness.runs.checkpoints import SOURCE_STATE, SourceCheckpoint, latest_checkpoint
    from harness.sources.pick import make_source
    from harness.tasks.datasets import TaskData
    from harness.trainers.build import build_trainer
    from harness.trainers.periodic_eval import PeriodicEval

    torch.set_num_threads(cfg.train.threads)
    set_seed(cfg.seed)
    model, tok = load(base_path or build(cfg), cfg.model)
    if cfg.method.name == "base":  # the untrained base model's row in every table
        return evaluate_into(rd, model, tok, cfg)
    data = TaskData(cfg.task)
    rows, problems = train_rows(cfg, data, Prompts(cfg, tok))
    source = make_source(cfg, evaluator=(data, tok))
    resume = latest_checkpoint(rd.checkpoints)
    if resume is None and is_main():  # exactly-once rows: an attempt that left no checkpoint is redone whole
        rd.start_afresh()
    elif resume is not None:
        source.load_state_dict(torch.load(resume / SOURCE_STATE, weights_only=False))
        if is_main():  # rank 0 alone writes the run folder (harness/compute/distributed.py)
            rd.truncate_metrics_after(int(resume.name.split("-")[1]))
    # loss=opsd: TRL's SDFTTrainer; grpo|antisd|sdar: TRL's GRPOTrainer (harness/trainers/build.py).
    trainer = build_trainer(cfg, rd, model, tok, rows, problems, source,
                            callbacks=[SourceCheckpoint(source, cfg.train.keep_checkpoints),
                                       PeriodicEval(cfg, tok, rd), *observers])
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return evaluate_into(rd, trainer.model, tok, cfg)


def evaluate_into(rd: RunDir, model, tok, cfg: RunConfig) -> dict:
    """Average@k of model, written as the run's eval files; {} on the ranks other than 0.
    Several processes: every rank samples its share, rank 0 grades and writes
    (harness/evaluation/shards.py). Resumable: a requeue in the middle redraws only the
    batches in flight (harness/evaluation/progress.py)."""
    from harness.evaluation.suites import evaluate_sets_parallel, finish_logs
    from harness.tasks.datasets import VAL_SUITE, TaskData

    data = TaskData(cfg.task)
    out = evaluate_sets_parallel(model, tok, cfg, {n: data.suite(n) for n in data.suites},
                                 rd.path / "eval_progress.jsonl")
    if out is not None:
        write_eval(rd.path, *out)
        finish_logs(rd.path / "eval_progress.jsonl")
    if cfg.eval.validation:  # make tune's objective; after the suites, so eval.json is unchanged by it
        val = evaluate_sets_parallel(model, tok, cfg, {VAL_SUITE: data.validation},
                                     rd.path / "val_progress.jsonl")
        if val is not None:
            write_eval(rd.path, *val, stem="val")
            finish_logs(rd.path / "val_progress.jsonl")
    return out[0] if out is not None else {}


def prepare_folder(cfg: RunConfig) -> RunDir | None:
    """The run folder, or None when it is already done (and force is off).

    A folder holding a run of another config is refused (ConfigError), never reused.
    """
    refuse_config_conflict(cfg)
    rd = RunDir(RunIdentity.of(cfg).folder)
    if rd.is_done() and not cfg.force:
        print(f"skip {rd.path}: already done (force=true re-runs it)")
        return None
    if not cfg.force:
        refuse_other_world(rd, world()[1])
    if rd.path.exists() and cfg.force:
        rd.path.rename(rd.path.with_name(f"{rd.path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}"))
    rd.path.mkdir(parents=True, exist_ok=True)
    return rd


def refuse_other_world(rd: RunDir, world_size: int) -> None:
    """A run's checkpoints resume only at the world size that wrote them: each rank's RNG
    state and data position are its own (ConfigError, one line, before anything is written)."""
    before = (rd.status() or {}).get("world_size")
    if before and before != world_size and any(rd.checkpoints.glob("checkpoint-*")):
        raise ConfigError(f"{rd.path.name}: its checkpoints were trained by {before} process(es) and "
                          f"this start has {world_size}; relaunch with launcher.gpus_per_node={before} "
                          "(the global batch is the same at any world size), or force=true to start over")


def run(cfg: RunConfig, resolved_yaml: str, observers: Sequence[Any] = ()) -> dict | None:
    """Train and evaluate cfg's run unless it is done; one live process per run folder.

    In a run of several processes (harness/compute/distributed.py) rank 0 holds the lock and
    decides (skip, resume, refuse); every rank trains; rank 0 alone writes the folder. Any
    rank's failure ends every rank within seconds (harness/compute/failfast.py).
    """
    from harness.compute.vllm_backend import check_eval_budget, drop_expandable_segments
    from harness.front.preflight import check_job as check_inputs  # GPUs asked for: CUDA, then inputs

    # Bad data sizes, fields, files, model config or tokenizer, and an evaluation HF generate
    # cannot serve (eval.hf_max_new_tokens): one line each, before any folder is touched.
    check_inputs(cfg)
    check_eval_budget(cfg)
    export_submitit_env()  # launcher.gpus_per_node > 1: submitit's tasks become ranks
    drop_expandable_segments(cfg.train)  # before CUDA starts: vLLM's sleep mode refuses it
    cfg.check_micro_batch(world()[1])  # the global batch splits evenly over this world
    # Training collectives time out in minutes; only the wait for rank 0's evaluation is long.
    init_process_group(cfg.launcher.collective_timeout_min, long_wait_min=cfg.launcher.timeout_min)
    attempt = Attempt.start(Path(cfg.results)) if world()[1] > 1 else None
    summary = guarded(attempt, lambda: run_ranks(cfg, resolved_yaml, observers, attempt))
    if attempt is not None:
        attempt.close()
    return summary


def run_ranks(cfg: RunConfig, resolved_yaml: str, observers: Sequence[Any],
              attempt: Attempt | None) -> dict | None:
    """run()'s body on every rank: lock, decide, train, evaluate (rank 0), leave together."""
    from harness.models.base_identity import resolve_base

    # A missing base model: one line, before any folder is touched.
    base_path = main_decides(lambda: resolve_base(cfg))
    with hold(Path(cfg.results), cfg.run_name) if is_main() else contextlib.nullcontext():
        rd = main_decides(lambda: prepare_folder(cfg))
        if rd is None:
            return None
        if not is_main():
            train_and_eval(cfg, rd, base_path, observers)
            finish()  # waits for rank 0's evaluation
            return None
        if attempt is not None:  # another rank's failure: rank 0 records it in status.json
            attempt.run_status = lambda reason, extra: rd.set_status("failed", reason, **extra)
        atomic_write(rd.path / "config.yaml", resolved_yaml)
        summary = train_in_slot(cfg, rd, base_path, observers)
        rd.set_status("done", suites={k: v["average"] for k, v in summary["suites"].items()})
    finish()
    for name, r in summary["suites"].items():
        print(f"{name}: Average@{r['k']} = {r['average']:.3f} ± {r['se']:.3f}")
    print(f"run folder: {rd.path}")
    return summary


def train_in_slot(cfg: RunConfig, rd: RunDir, base_path: Path | None,
                  observers: Sequence[Any] = ()) -> dict:
    with slot(Path(cfg.results) / ".slots", cfg.launcher.max_parallel):
        starts = (rd.status() or {}).get("starts", 0) + 1
        # the run's identity (harness/runs/identity.py) from the first status write: readers take it
        rd.set_status("running", host=os.uname().nodename, pid=os.getpid(), starts=starts,
                      identity=RunIdentity.of(cfg).to_json(), world_size=world()[1])
        try:
            with tracking(cfg, rd) as trackers:  # every metrics row also goes to train.report_to
                summary = train_and_eval(cfg, rd, base_path, observers)
                trackers.log_eval_summary(summary, step=0 if cfg.method.name == "base" else cfg.train.steps)
                return summary
        except SystemExit as err:  # submitit's requeue at the SLURM time limit exits so
            rd.set_status("running", f"interrupted (SystemExit {err.code}, e.g. requeued at the "
                          "time limit): the next start resumes from the last checkpoint")
            raise
        except BaseException as err:
            rd.set_status("failed", f"{type(err).__name__}: {err}".splitlines()[0],
                          traceback=traceback.format_exc()[-4000:])
            raise


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


# An absolute path: the app is also started from harness.front.sweep (make sweep), a module import.
@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def main(dcfg: DictConfig) -> dict | None:
    try:
        cfg = to_run_config(dcfg)
        return run(cfg, stored_yaml(dcfg, cfg))
    except ConfigError as err:  # bad values and folder conflicts: before anything is written
        fail(err)
    except Exception:
        # (a run of several processes never gets here: harness/compute/failfast.py ends them all)
        if not in_multirun():
            raise
        # One failed run must not stop its siblings: its status.json says failed and why,
        # the sweep's closing table lists it, and the traceback stays in this job's log.
        traceback.print_exc()
        return None


if __name__ == "__main__":
    main()
