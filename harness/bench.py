"""Benchmark the mismatch probe: all exposures in one teacher forward vs one forward per exposure.

python -m harness.bench [--rollouts 16] [--repeats 7] [hydra overrides, e.g. profile=smoke]

The probe (harness/trainer.py, `probe.max_rows`) scores the same rollouts under a
teacher shown each probed exposure. This times both ways through the trainer's own
loop (`probe_mismatch`) on the configured model shape (untrained weights: the cost
does not depend on them), interleaved in one process so that machine noise hits both
alike, and prints the median of each and their ratio. It also checks that both ways give the same mismatch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from harness.config import RunConfig
from harness.models import TinyModelSpec, build_model, build_tokenizer
from harness.prompts import Prompts, completion_text
from harness.tasks.datasets import TaskData
from harness.tasks.synthetic import take


def probe_inputs(cfg: RunConfig, tok, rollouts: int) -> tuple[list[list[int]], list[list[int]]]:
    """(teacher prompt ids per exposure x rollout, completion ids per rollout)."""
    problems = take(TaskData(cfg.task).train_stream(cfg.seed), rollouts)
    texts = Prompts(cfg, tok)
    prompts = [texts.teacher(p, r) for r in cfg.probe.exposures for p in problems]
    # Stand-in rollouts: the references, without the end token (the cost is what is timed).
    completions = [tok(completion_text(p.solution), add_special_tokens=False)["input_ids"]
                   for p in problems]
    return [tok(x, add_special_tokens=False)["input_ids"] for x in prompts], completions


def left_pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids_B_T = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask_B_T = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids_B_T, mask_B_T


def teacher_logits_fn(model, prompts: list[list[int]], exposures: list[float], comp_B_C: torch.Tensor,
                      cmask_B_C: torch.Tensor, pad: int):
    """teacher_logits(chunk) for harness.trainer.probe_mismatch, from pre-tokenised prompts."""
    n, c_len = comp_B_C.shape
    by_exposure = {r: prompts[i * n:(i + 1) * n] for i, r in enumerate(exposures)}

    def teacher_logits(chunk: list[float]) -> torch.Tensor:
        rows = [p for r in chunk for p in by_exposure[r]]
        p_ids, p_mask = left_pad(rows, pad)
        ids = torch.cat([p_ids, comp_B_C.repeat(len(chunk), 1)], 1)
        mask = torch.cat([p_mask, cmask_B_C.repeat(len(chunk), 1)], 1)
        return model(input_ids=ids, attention_mask=mask).logits[:, -c_len - 1:-1]

    return teacher_logits


def main(argv: list[str]) -> None:
    from harness.settings import compose, fail

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rollouts", type=int, default=16, help="rollouts per probed step")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds of each way")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    try:
        if a.rollouts < 1 or a.repeats < 1:
            raise ValueError(f"--rollouts={a.rollouts} and --repeats={a.repeats} must be >= 1")
        cfg = compose(a.overrides)
    except ValueError as err:
        fail(err)
    from harness.trainer import probe_mismatch  # TRL import: only once the input is valid

    torch.set_num_threads(cfg.train.threads)
    tok = build_tokenizer()
    m = cfg.model
    model = build_model(tok, TinyModelSpec(m.hidden_size, m.num_layers, m.num_heads, m.num_kv_heads,
                                           m.intermediate_size), seed=cfg.seed).eval()
    prompts, completions = probe_inputs(cfg, tok, a.rollouts)
    comp_B_C, cmask_B_C = left_pad(completions, tok.pad_token_id)  # stand-in rollouts: the references
    c_len = comp_B_C.shape[1]
    with torch.no_grad():
        student = prompts[:a.rollouts]  # r = 0 rows are the student's own context when exposures start at 0
        s_ids, s_mask = left_pad(student, tok.pad_token_id)
        s_logits = model(input_ids=torch.cat([s_ids, comp_B_C], 1),
                         attention_mask=torch.cat([s_mask, cmask_B_C], 1)).logits[:, -c_len - 1:-1]
    exposures = list(cfg.probe.exposures)
    teacher_logits = teacher_logits_fn(model, prompts, exposures, comp_B_C, cmask_B_C, tok.pad_token_id)
    ways = {"one forward": 0, "one per exposure": a.rollouts}  # probe.max_rows of each way
    times: dict[str, list[float]] = {w: [] for w in ways}
    results = {}
    for _ in range(a.repeats):
        for way, max_rows in ways.items():
            t0 = time.perf_counter()
            rows = probe_mismatch(exposures, max_rows, teacher_logits, s_logits, cmask_B_C)
            times[way].append(time.perf_counter() - t0)
            results[way] = [r["mismatch_kl_st"] for r in rows]
    med = {w: statistics.median(t) for w, t in times.items()}
    agree = max(abs(x - y) for x, y in zip(*results.values()))
    print(f"probe of {len(exposures)} exposures x {a.rollouts} rollouts, "
          f"{a.repeats} interleaved rounds, {cfg.train.threads} thread(s):")
    for w in ways:
        print(f"  {w:<17} median {med[w] * 1000:8.1f} ms")
    print(f"  ratio one-per-exposure / one-forward = {med['one per exposure'] / med['one forward']:.2f}x; "
          f"max |mismatch difference| = {agree:.2e}")


if __name__ == "__main__":
    main(sys.argv[1:])
