"""A data-parallel evaluation draws what one process draws, shares the work, and resumes per rank.

python -m pytest -q tests/test_eval_shards.py

harness/evaluation/shards.py: each rank samples its units into its own log, rank 0 merges the
logs and grades. On HF generate a unit is a suite (one seeded stream); on vLLM it is a piece of
prompts, each prompt with its own seed. The last test runs a real 2-process (gloo) run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.compute.vllm_backend import VLLMEngine
from harness.config.settings import compose
from harness.evaluation.progress import EvalProgress
from harness.evaluation.shards import Shard, ShardLog, merge_rank_logs, pieces, read_rows
from harness.evaluation.suites import evaluate_sets, run_key, sample_share
from harness.models.tiny import load
from harness.tasks.datasets import TaskData

ROOT = Path(__file__).resolve().parent.parent
OVERRIDES = ["profile=smoke", "eval.batch_size=4", "eval.k=2"]  # 3 suites x 2 batches of 4 sequences


@pytest.fixture(scope="module")
def model_tok(smoke_base):
    return load(smoke_base, compose(OVERRIDES).model)


def suites(cfg) -> dict:
    data = TaskData(cfg.task)
    return {n: data.suite(n) for n in data.suites}


def strip(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("seconds", "resumed_batches")}


def test_units_go_round_robin_and_logs_sit_beside_the_runs():
    assert [u for u in range(7) if Shard(1, 3).owns(u)] == [1, 4]
    assert Shard(1, 2).log_path(Path("/x/eval_progress.jsonl")) == Path("/x/eval_progress.rank1.jsonl")
    assert pieces(9, 4) == 3 and pieces(8, 4) == 2 and pieces(0, 4) == 1


def test_two_shares_merged_equal_one_process_on_hf(model_tok, tmp_path):
    model, tok = model_tok
    cfg = compose(OVERRIDES)
    sets = suites(cfg)
    whole, whole_samples = evaluate_sets(model, tok, cfg, sets)
    log = tmp_path / "eval_progress.jsonl"
    key = run_key(model, cfg)
    # rank 1 owns suite 1 (the middle one) whole: both of its batches, nothing of the others
    assert sample_share(model, tok, cfg, sets, Shard(1, 2), log) == 0
    rank1 = read_rows(Shard(1, 2).log_path(log), key)
    assert [(r["key"].split(":")[0], r["batch"]) for r in rank1] == [("medium_k4", 0), ("medium_k4", 1)]
    sample_share(model, tok, cfg, sets, Shard(0, 2), log)
    rank0 = read_rows(Shard(0, 2).log_path(log), key)
    assert {r["key"].split(":")[0] for r in rank0} == {"easy_k3", "hard_k5"}
    assert merge_rank_logs(log, 2, key) == 6
    merged, merged_samples = evaluate_sets(model, tok, cfg, sets, progress_path=log)
    assert merged["resumed_batches"] == 6  # rank 0's grading pass drew nothing itself
    assert strip(merged) == strip(whole) and merged_samples == whole_samples
    # a rank's log resumes: asked again, rank 1 finds both of its batches done
    assert sample_share(model, tok, cfg, sets, Shard(1, 2), log) == 2


def test_a_rank_log_of_other_weights_or_settings_is_not_merged(tmp_path):
    log = tmp_path / "eval_progress.jsonl"
    other = EvalProgress(Shard(1, 2).log_path(log), "another-key")
    other.suite("easy_k3", ["p"]).put(0, ["x"], None)
    assert merge_rank_logs(log, 2, "this-key") == 0
    assert EvalProgress(log, "this-key").done == {}


class SeedRecorder:
    """vLLM's LLM as far as VLLMEngine uses it: records each prompt's seed."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    def generate(self, prompts, params, use_tqdm=False):
        self.seeds += [p.seed for p in params]
        return [SimpleNamespace(outputs=[SimpleNamespace(text=f"s{p.seed}")] * p.n) for p in params]


def test_vllm_pieces_are_shared_out_and_drawn_with_the_seeds_of_one_process(model_tok, tmp_path, monkeypatch):
    import harness.compute.vllm_backend as vb

    _, tok = model_tok
    monkeypatch.setattr(vb, "_vllm", lambda: (None, lambda **kw: SimpleNamespace(**kw)))
    prompts = [f"problem {i}" for i in range(10)]  # 3 pieces of 4 prompts
    whole_llm = SeedRecorder()
    whole = VLLMEngine(whole_llm, tok).sample(prompts, 2, 1.0, 0.95, 8, 100, None, 4)
    drawn: dict[int, list[int]] = {}
    for rank in (0, 1):
        llm = SeedRecorder()
        progress = EvalProgress(tmp_path / f"r{rank}.jsonl", "k")
        log = ShardLog(progress.suite("s", prompts), Shard(rank, 2), first_unit=1)  # suite starts at unit 1
        out = VLLMEngine(llm, tok).sample(prompts, 2, 1.0, 0.95, 8, 100, log, 4)
        drawn[rank] = llm.seeds
        assert len(out) == len(prompts)
        assert sorted(b for _, b in progress.done) == ([1] if rank == 0 else [0, 2])
    # rank 1 drew pieces 0 and 2 (units 1, 3), rank 0 piece 1 (unit 2): every prompt once, same seeds
    assert sorted(drawn[0] + drawn[1]) == whole_llm.seeds == list(range(100, 110))
    assert drawn[0] == list(range(104, 108))
    assert whole[4] == ["s104", "s104"]


def torchrun(results: Path, n: int, extra: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--standalone",
           "-m", "harness.run", "profile=smoke", "method=base", f"results={results}", *OVERRIDES[1:], *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def test_a_two_process_run_evaluates_in_parallel_resumes_a_rank_and_equals_one_process(
        model_tok, tmp_path, smoke_base):
    model, tok = model_tok
    one, two = tmp_path / "one", tmp_path / "two"
    torchrun(one, 1, [])
    (folder1,) = [p for p in one.iterdir() if not p.name.startswith(".")]
    # a requeued attempt: rank 1's share already in its log (the same weights and settings)
    folder2 = two / folder1.name
    folder2.mkdir(parents=True)
    cfg = compose(OVERRIDES)
    sample_share(model, tok, cfg, suites(cfg), Shard(1, 2), folder2 / "eval_progress.jsonl")
    torchrun(two, 2, [])
    e1, e2 = (json.loads((f / "eval.json").read_text()) for f in (folder1, folder2))
    assert e2["world_size"] == 2 and e1["world_size"] == 1
    assert e2["resumed_batches"] == 2 and e1["resumed_batches"] == 0  # rank 1's suite was not redrawn
    assert e1["suites"] == e2["suites"]
    assert (folder1 / "eval_samples.jsonl").read_text() == (folder2 / "eval_samples.jsonl").read_text()
    assert not list(folder2.glob("eval_progress*"))  # every log has served
