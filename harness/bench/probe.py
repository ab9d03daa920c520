"""The mismatch probe: its share of a run's training time, and batched vs one forward per exposure.

python -m harness.bench --only probe [--rounds 7] [overrides]

- probe_share (target <= 0.15, harness/DESIGN.md): an OPSDTrainer (shipped base) times, in
  interleaved rounds on the same batch and seed, a step without the probe, a step with
  it, and the probe alone (OPSDTrainer.probe_rows on a prepared batch). The share over a
  run of train.steps steps with a probe every probe.every steps (and at step 1) is
  n_probes * probe / (steps * step + n_probes * probe); the with-minus-without difference
  is kept beside it as a check.
- probe_batching (no target): the probe scores the same rollouts under a teacher shown
  each probed exposure (harness/trainers/opsd.py, `probe.max_rows`); this times all exposures
  in one teacher forward against one forward per exposure, through the trainer's own
  loop (harness/trainers/probe.py `probe_mismatch`), at several rollout counts, to say where
  batching wins on this machine. Untrained weights: the cost does not depend on them (the rollouts are the
  references). Both ways must give the same mismatch.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from harness.bench.record import BenchArgs, Result, Target
from harness.bench.timing import interleave, median, paired_median
from harness.config.schema import RunConfig
from harness.losses.hidden_states import final_hidden, lm_head
from harness.models.tiny import TinyModelSpec, build_model, build_tokenizer
from harness.prompts.templates import Prompts, completion_text
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


def teacher_hidden_fn(model, prompts: list[list[int]], exposures: list[float], comp_B_C: torch.Tensor,
                      cmask_B_C: torch.Tensor, pad: int):
    """teacher_hidden(chunk, rows) for harness.trainers.probe.probe_mismatch, from pre-tokenised prompts."""
    n, c_len = comp_B_C.shape
    by_exposure = {r: prompts[i * n:(i + 1) * n] for i, r in enumerate(exposures)}

    def teacher_hidden(chunk: list[float], rows: slice) -> torch.Tensor:
        p_ids, p_mask = left_pad([p for r in chunk for p in by_exposure[r][rows]], pad)
        ids = torch.cat([p_ids, comp_B_C[rows].repeat(len(chunk), 1)], 1)
        mask = torch.cat([p_mask, cmask_B_C[rows].repeat(len(chunk), 1)], 1)
        return final_hidden(model, ids, mask, c_len)

    return teacher_hidden


DEFAULT_ROUNDS = 7
ROLLOUT_COUNTS, QUICK_COUNTS = (4, 16, 64), (2, 4)


def batching_at(cfg: RunConfig, model, tok, rollouts: int, rounds: int) -> dict:
    """Both ways at one rollout count: seconds per round and the largest disagreement."""
    from harness.losses.chunked import spec_of
    from harness.trainers.probe import probe_mismatch

    prompts, completions = probe_inputs(cfg, tok, rollouts)
    comp_B_C, cmask_B_C = left_pad(completions, tok.pad_token_id)
    c_len = comp_B_C.shape[1]
    with torch.no_grad():
        # r = 0 rows are the student's own context when the exposures start at 0
        s_ids, s_mask = left_pad(prompts[:rollouts], tok.pad_token_id)
        h_s = final_hidden(model, torch.cat([s_ids, comp_B_C], 1), torch.cat([s_mask, cmask_B_C], 1), c_len)
    exposures = list(cfg.probe.exposures)
    teacher_hidden = teacher_hidden_fn(model, prompts, exposures, comp_B_C, cmask_B_C, tok.pad_token_id)
    head = lm_head(model)
    spec = replace(spec_of(cfg.loss, head.weight.shape[0]), loss=False)  # statistics only, as the trainer's
    mismatch: dict[str, list[float]] = {}

    def way(max_rows: int, name: str):
        def call(_: int) -> None:
            rows = probe_mismatch(exposures, max_rows, rollouts, lambda r: h_s[r], teacher_hidden,
                                  comp_B_C, cmask_B_C, head, head, spec)
            mismatch[name] = [r["mismatch_kl_st"] for r in rows]
        return call

    # probe.max_rows of each way: 0 puts all exposures in one forward, `rollouts` one per exposure
    times = interleave({"one forward": way(0, "one forward"),
                        "one per exposure": way(rollouts, "one per exposure")}, rounds)
    agree = max(abs(x - y) for x, y in zip(*mismatch.values()))
    return {"times": times, "max_abs_mismatch_difference": agree,
            "ratio": median(times["one per exposure"]) / median(times["one forward"])}


def batching(b: BenchArgs, rounds: int) -> Result:
    cfg = b.cfg
    tok = build_tokenizer()
    m = cfg.model
    model = build_model(tok, TinyModelSpec(m.hidden_size, m.num_layers, m.num_heads, m.num_kv_heads,
                                           m.intermediate_size), seed=cfg.seed).eval()
    headline = cfg.train.prompts_per_step
    counts = sorted({*(QUICK_COUNTS if b.quick else ROLLOUT_COUNTS), headline})
    at = {n: batching_at(cfg, model, tok, n, rounds) for n in counts}
    wins = [n for n in counts if at[n]["ratio"] > 1]
    loses = [n for n in counts if at[n]["ratio"] <= 1]
    details = {"exposures": list(cfg.probe.exposures), "headline_rollouts": headline,
               "by_rollouts": {str(n): {"ratio": a["ratio"], "max_abs_mismatch_difference":
                                        a["max_abs_mismatch_difference"],
                                        "medians_s": {k: median(v) for k, v in a["times"].items()}}
                               for n, a in at.items()}}
    note = "; ".join(f"{n} rollouts {at[n]['ratio']:.2f}x" for n in counts)
    verdict = (f"batching wins at {wins} rollouts" if wins else "batching never wins") + \
              (f", loses at {loses}" if loses and wins else "")
    return Result("probe_batching", f"probe: all {len(cfg.probe.exposures)} exposures in one teacher forward "
                  f"vs one forward per exposure, at {headline} rollouts (untrained weights)",
                  at[headline]["ratio"], "one per exposure / one forward", None, at[headline]["times"],
                  details=details, limits=f"{verdict} ({note}); > 1: batching is faster. One forward "
                                          "pads every row to the longest (r = 1) teacher prompt")


def run_probes(every: int, steps: int) -> int:
    """Probed steps in a run: step 1 and every `every`-th (OPSDTrainer._prepare_training_batch)."""
    return sum(1 for s in range(1, steps + 1) if every and (s == 1 or s % every == 0))


def share(b: BenchArgs, rounds: int) -> Result:
    from harness.bench import trainers
    from harness.bench.step import seeded_step

    cfg = copy.deepcopy(b.cfg)  # the trainer's run_cfg.probe.every is switched below
    every, steps = b.cfg.probe.every, b.cfg.train.steps
    with tempfile.TemporaryDirectory(prefix="bench_probe_") as tmp:
        opsd = trainers.opsd(trainers.Setup(cfg, trainers.base_path(cfg), Path(tmp)))
        batch = trainers.first_batch(opsd)
        probe_cfg = opsd.run_cfg.probe
        probe_cfg.every = 0
        torch.manual_seed(0)
        prepared = opsd._prepare_training_batch(batch)  # rollouts the probe alone scores
        problem_ids = [x["privileged_context"] for x in batch]

        def step(probe_every: int):
            inner = seeded_step(opsd, batch, [], lambda t: 0.0)

            def call(i: int) -> None:
                probe_cfg.every = probe_every  # 1: this step probes; 0: it does not
                inner(i)
                opsd.pending_rows.clear()
            return call

        times = interleave({"step without probe": step(0), "step with probe": step(1),
                            "probe alone": lambda i: opsd.probe_rows(prepared, problem_ids, 1)}, rounds)
    n = run_probes(every, steps)
    step_s, probe_s = median(times["step without probe"]), median(times["probe alone"])
    diff_s = paired_median(times["step with probe"], times["step without probe"])

    def share_of(p: float) -> float:
        return n * p / (steps * step_s + n * p)

    details = {"probes_in_run": n, "steps": steps, "probe_every": every,
               "probe_alone_s": probe_s, "step_s": step_s, "with_minus_without_s": diff_s,
               "share_from_with_minus_without": share_of(diff_s),
               "probe_per_step_ratio": probe_s / step_s}
    return Result("probe_share", f"probe's share of a run's training time ({steps} steps, a probe every "
                  f"{every} and at step 1: {n} probes; the run's base model)", share_of(probe_s),
                  "probe time / training time", Target("<=", 0.15), times, details=details,
                  limits=f"one probe costs {probe_s / step_s:.2f} of a step (with-minus-without: "
                         f"{diff_s / step_s:.2f})")


def run(b: BenchArgs) -> list[Result]:
    rounds = b.rounds or DEFAULT_ROUNDS
    return [share(b, rounds), batching(b, rounds)]
