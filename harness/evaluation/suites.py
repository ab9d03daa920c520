"""Average@k evaluation: k samples per problem, SE over problems, unbiased pass@k.

python -m harness.evaluate --model PATH [--suite medium_k4] [--k 12]   # the command line over this

The student is evaluated from its own prompt; `exposure` evaluates a teacher shown
the first r of each reference (harness/models/basecheck.py's table). Prompts come from
harness/prompts/templates.py (eval.thinking), the samples from HF generate or vLLM (eval.backend,
harness/compute/vllm_backend.py): one completions_P_K structure, graded and averaged here.
An evaluation of several suites samples them all from one sampler (`eval_sampler`): on
vLLM one engine, started once (its weights exported once), serves every suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.compute.distributed import wait_all, world
from harness.compute.reduce import global_count
from harness.compute.vllm_backend import eval_backend, vllm_engine
from harness.config.schema import RunConfig
from harness.evaluation.metrics_math import average_at_k, mean_pass_at_k
from harness.evaluation.progress import BatchLog, EvalProgress, digest, model_fingerprint
from harness.evaluation.sampling import sample_completions
from harness.evaluation.shards import Shard, ShardLog, merge_rank_logs, pieces, remove_rank_logs
from harness.prompts.templates import eval_prompts_for
from harness.tasks.datasets import VAL_SUITE, TaskData
from harness.tasks.grading import grade
from harness.tasks.problem import Problem

# (prompts, progress label, finished batches or None) -> completions_P_K: eval.k samples per prompt
Sampler = Callable[[list[str], str, BatchLog | None], list[list[str]]]


def eval_suite(model, tokenizer, cfg: RunConfig, name: str, problems: list[Problem],
               exposure: float | None = None, sampler: Sampler | None = None,
               progress: EvalProgress | None = None) -> tuple[dict, list[dict]]:
    """(summary, samples) for one suite; summary has average, se, pass@{1,4,k}. sampler:
    an open eval_sampler (None: one for this suite alone); progress: the resumable log."""
    e = cfg.eval
    prompts = eval_prompts_for(problems, cfg, tokenizer, exposure)
    log = progress.suite(name, prompts) if progress is not None else None
    if sampler is None:
        with eval_sampler(model, tokenizer, cfg) as own:
            completions_P_K = own(prompts, f"eval {name}", log)
    else:
        completions_P_K = sampler(prompts, f"eval {name}", log)
    samples, correct_P_K = [], []
    for prob, completions in zip(problems, completions_P_K):
        row = []
        for i, text in enumerate(completions):
            pred, ok = grade(cfg.task.grader, text, prob.answer)
            row.append(ok)
            samples.append({"suite": name, "problem_id": prob.id, "sample": i, "answer": pred,
                            "gold": prob.answer, "correct": ok, "completion": text})
        correct_P_K.append(row)
    avg, se = average_at_k(correct_P_K)
    summary = {"average": avg, "se": se, "k": e.k, "num_problems": len(problems)}
    for k in sorted({1, 4, e.k}):
        if k <= e.k:
            summary[f"pass@{k}"] = mean_pass_at_k(correct_P_K, k)
    return summary, samples


@contextmanager
def eval_sampler(model, tokenizer, cfg: RunConfig) -> Iterator[Sampler]:
    """The sampler eval.backend picks, open for any number of prompt sets: vLLM's engine
    starts once here and stops on exit; HF generate seeds each call as before (eval.seed),
    so every suite draws what it drew when it was sampled alone."""
    e = cfg.eval
    if eval_backend(e.backend) == "vllm":
        with vllm_engine(model, tokenizer, e.seed, e.vllm_gpu_memory, cfg.model.trust_remote_code,
                         e.max_model_len) as engine:
            piece = eval_piece(cfg)
            yield lambda prompts, desc, log: engine.sample(prompts, e.k, e.temperature, e.top_p,
                                                           e.max_new_tokens, e.seed, log, piece)
        return
    yield lambda prompts, desc, log: sample_completions(model, tokenizer, prompts, e.k, e.temperature,
                                                        e.top_p, e.max_new_tokens, e.batch_size, e.seed,
                                                        desc=desc, log=log)


def eval_piece(cfg: RunConfig) -> int:
    """Prompts per vLLM generate call: eval.batch_size sequences, the unit a requeue resumes
    from and a data-parallel evaluation shares out (harness/evaluation/shards.py)."""
    return max(1, cfg.eval.batch_size // cfg.eval.k)


def evaluate(model, tokenizer, cfg: RunConfig, suites: list[str] | None = None,
             exposure: float | None = None, progress_path: Path | None = None) -> tuple[dict, list[dict]]:
    """progress_path: the resumable log (harness/evaluation/progress.py); None: not resumable."""
    data = TaskData(cfg.task)
    names = suites or list(data.suites)
    return evaluate_sets(model, tokenizer, cfg, {n: data.suite(n) for n in names}, exposure, progress_path)


def evaluate_validation(model, tokenizer, cfg: RunConfig,
                        progress_path: Path | None = None) -> tuple[dict, list[dict]]:
    """Average@k of the student on the task's validation problems (val.json, eval.validation):
    the same sampling and grading as the suites; make tune's objective (harness/tune/study.py)."""
    return evaluate_sets(model, tokenizer, cfg, {VAL_SUITE: TaskData(cfg.task).validation},
                         progress_path=progress_path)


def sampling_settings(cfg: RunConfig, exposure: float | None = None) -> dict:
    """Every setting the samples depend on: eval.json records them (paper comparability:
    the public OPSD evaluation is T 1.0, top-p 0.95, thinking on, 38,912 tokens, 40,960 context)."""
    e = cfg.eval
    thinking = cfg.task.student_thinking if e.thinking is None else e.thinking
    return {"k": e.k, "temperature": e.temperature, "top_p": e.top_p, "top_k": 0,
            "max_new_tokens": e.max_new_tokens, "max_model_len": e.max_model_len, "seed": e.seed,
            "backend": eval_backend(e.backend), "thinking": thinking if cfg.task.chat_template else None,
            "batch_size": e.batch_size, "exposure": exposure}


def evaluate_sets(model, tokenizer, cfg: RunConfig, sets: dict[str, list[Problem]],
                  exposure: float | None = None,
                  progress_path: Path | None = None, key: str | None = None) -> tuple[dict, list[dict]]:
    """(summary, samples) over named problem sets, summary as eval.json (harness/runs/schema.py).
    With progress_path, each finished batch is logged there and a restart skips it; the caller
    removes the log once the files are written (EvalProgress.finish). key: run_key's value when
    the caller has it (a pass over every weight less)."""
    results, samples, t0 = {}, [], time.time()
    settings = sampling_settings(cfg, exposure)
    progress = (EvalProgress(progress_path, key or run_key(model, cfg, exposure))
                if progress_path is not None else None)
    with eval_sampler(model, tokenizer, cfg) as sampler:  # one vLLM engine for every set
        for name, problems in sets.items():
            results[name], s = eval_suite(model, tokenizer, cfg, name, problems, exposure, sampler, progress)
            samples.extend(s)
    summary = {"suites": results, "k": cfg.eval.k, "temperature": cfg.eval.temperature,
               "exposure": exposure, "seconds": round(time.time() - t0, 2),
               "backend": settings["backend"], "sampling": settings,
               "resumed_batches": progress.resumed if progress is not None else 0, "world_size": 1}
    return summary, samples


def run_key(model, cfg: RunConfig, exposure: float | None = None) -> str:
    """The key of an evaluation's logs: the weights and every sampling setting."""
    return digest([model_fingerprint(model), sampling_settings(cfg, exposure)])


def sample_share(model, tokenizer, cfg: RunConfig, sets: dict[str, list[Problem]], shard: Shard,
                 progress_path: Path, exposure: float | None = None, key: str | None = None) -> int:
    """Draw this rank's units of an evaluation over `sets` into its own log
    (harness/evaluation/shards.py): a whole suite on HF generate (suite i to rank i % world),
    pieces of eval_piece(cfg) prompts on vLLM (numbered across the suites). Returns the number
    of batches this rank's log already held (an interrupted attempt's)."""
    progress = EvalProgress(shard.log_path(progress_path), key or run_key(model, cfg, exposure))
    on_vllm = eval_backend(cfg.eval.backend) == "vllm"
    unit = 0
    with eval_sampler(model, tokenizer, cfg) as sampler:
        for i, (name, problems) in enumerate(sets.items()):
            prompts = eval_prompts_for(problems, cfg, tokenizer, exposure)
            log = progress.suite(name, prompts)
            desc = f"eval {name} (rank {shard.rank})"
            if on_vllm:
                sampler(prompts, desc, ShardLog(log, shard, unit))
                unit += pieces(len(prompts), eval_piece(cfg))
            elif shard.owns(i):
                sampler(prompts, desc, log)
    return progress.resumed


def evaluate_sets_parallel(model, tokenizer, cfg: RunConfig, sets: dict[str, list[Problem]],
                           progress_path: Path, exposure: float | None = None
                           ) -> tuple[dict, list[dict]] | None:
    """evaluate_sets over every rank of the run: each samples its share, rank 0 merges the
    ranks' logs and grades (None on the other ranks). One process: evaluate_sets itself."""
    rank, size = world()
    if size <= 1:
        return evaluate_sets(model, tokenizer, cfg, sets, exposure, progress_path)
    key = run_key(model, cfg, exposure)  # once: it reads every weight
    resumed = sample_share(model, tokenizer, cfg, sets, Shard(rank, size), progress_path, exposure, key)
    wait_all()  # every share drawn (the long-timeout group: shares take hours on the paper's budget)
    resumed = int(global_count(resumed))
    if rank != 0:
        return None
    merge_rank_logs(progress_path, size, key)
    summary, samples = evaluate_sets(model, tokenizer, cfg, sets, exposure, progress_path, key)
    summary.update(world_size=size, resumed_batches=resumed)  # not the merged shares: those were drawn now
    return summary, samples


def finish_logs(progress_path: Path) -> None:
    """The evaluation's files are written: its log and any rank logs have served."""
    progress_path.unlink(missing_ok=True)
    remove_rank_logs(progress_path, world()[1])
