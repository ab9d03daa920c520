"""The OPSD optimiser step against TRL's SDFTTrainer step and against the sum of its parts.

python -m harness.bench --only step [--rounds 7] [overrides]

Three ways, one process, interleaved rounds, the same first batch every round and the
same torch seed for the ways of one round (so they sample alike):
- `opsd step`: OPSDTrainer, one whole optimiser step (harness/bench/trainers.py
  optimiser_step: rollouts sampled inside training_step), probe off (its cost is the
  probe benchmark's);
- `sdft step`: TRL's SDFTTrainer, the same model, batch and settings;
- `parts`: what the step cannot do without, each timed alone on its own model copy:
  sampling the rollouts (model.generate with the trainer's generation config), the
  teacher forward, the student forward + loss + backward + clipping + optimizer step.
  Tokenising and tensor assembly between the parts are left out of the sum.
Targets (harness/DESIGN.md): opsd / sdft <= 1.10, opsd / sum of parts <= 1.2. The shipped base
model is used: the rollouts' length, hence the cost, depends on the weights.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from harness.bench import trainers
from harness.bench.record import BenchArgs, Result, Target
from harness.bench.timing import interleave, median

DEFAULT_ROUNDS = 7
SEED = 1000  # round i samples with torch seed SEED + i, in every way


class Parts:
    """The step's necessary parts on a model copy of their own, timed one by one."""

    def __init__(self, s: trainers.Setup, batch: list[dict], gen_config, optim_type, optim_defaults) -> None:
        from harness.models.tiny import load, lora_adapter_config
        from harness.prompts.templates import Prompts

        cfg = s.cfg
        self.cfg = cfg
        self.model, self.tok = load(s.model_path, cfg.model)
        self.teacher, self.teacher_ctx = self.model, contextlib.nullcontext
        lora = lora_adapter_config(cfg.model.lora)
        if lora is not None:
            from peft import get_peft_model

            self.model = self.teacher = get_peft_model(self.model, lora)
            if cfg.teacher.mode == "base":  # TRL's base teacher under LoRA: the adapters disabled
                self.teacher_ctx = self.model.disable_adapter
        elif cfg.teacher.mode != "live":  # base / ema: a frozen copy of the start weights
            self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.model.train()
        self.gen_config = gen_config
        params = [p for p in self.model.parameters() if p.requires_grad]
        accepted = inspect.signature(optim_type).parameters  # defaults hold a few derived keys too
        self.opt = optim_type(params, **{k: v for k, v in optim_defaults.items() if k in accepted})
        problems, _ = trainers.problems_and_rows(cfg, self.tok)
        prompts = Prompts(cfg, self.tok)
        self.student_ids = [self.tok(r["prompt"])["input_ids"] for r in batch]
        self.teacher_ids = [prompts.teacher_ids(problems[r["privileged_context"]], cfg.exposure)[0]
                            for r in batch]
        self.times: dict[str, list[float]] = {"sampling": [], "teacher forward": [], "student step": []}
        self.lengths: list[float] = []

    def left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        from trl.trainer.utils import pad

        ids = [torch.tensor(r) for r in rows]
        dev = self.model.device
        return (pad(ids, padding_value=self.tok.pad_token_id, padding_side="left").to(dev),
                pad([torch.ones_like(x) for x in ids], padding_value=0, padding_side="left").to(dev))

    def logits(self, model, ids_B_T, mask_B_T, c_len: int) -> torch.Tensor:
        out = model(input_ids=ids_B_T, attention_mask=mask_B_T, use_cache=False, logits_to_keep=c_len + 1)
        return out.logits[:, :-1][:, -c_len:] / self.gen_config.temperature

    def __call__(self, i: int) -> None:
        import time

        from harness.losses.divergences import generalized_jsd, masked_mean

        p_ids, p_mask = self.left_pad(self.student_ids)
        torch.manual_seed(SEED + i)
        t0 = time.perf_counter()
        with torch.no_grad():
            out_B_T = self.model.generate(input_ids=p_ids, attention_mask=p_mask,
                                          generation_config=self.gen_config)
        t1 = time.perf_counter()
        comp_B_C = out_B_T[:, p_ids.shape[1]:]
        cmask_B_C = completion_mask(comp_B_C, self.tok.eos_token_id)
        self.lengths.append(cmask_B_C.sum(1).float().mean().item())
        c_len = comp_B_C.shape[1]
        t_ids, t_mask = self.left_pad(self.teacher_ids)
        t_ids, t_mask = torch.cat([t_ids, comp_B_C], 1), torch.cat([t_mask, cmask_B_C], 1)
        s_ids, s_mask = torch.cat([p_ids, comp_B_C], 1), torch.cat([p_mask, cmask_B_C], 1)
        t2 = time.perf_counter()
        with torch.no_grad(), self.teacher_ctx():
            t_logits_B_C_V = self.logits(self.teacher, t_ids, t_mask, c_len)
        t3 = time.perf_counter()
        lc = self.cfg.loss
        s_logits_B_C_V = self.logits(self.model, s_ids, s_mask, c_len)
        per_token_B_C = generalized_jsd(t_logits_B_C_V, s_logits_B_C_V, lc.beta, lc.support, lc.topk)
        loss = masked_mean(per_token_B_C, cmask_B_C)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.max_grad_norm)
        self.opt.step()
        self.opt.zero_grad()
        t4 = time.perf_counter()
        if i >= 0:  # warm-up rounds are not recorded
            for name, dt in zip(self.times, (t1 - t0, t3 - t2, t4 - t3)):
                self.times[name].append(dt)


def completion_mask(comp_B_C: torch.Tensor, eos: int) -> torch.Tensor:
    """1 up to and including the first end token (TRL's rule in _generate_transformers)."""
    is_eos = comp_B_C == eos
    none_B = torch.full_like(is_eos[:, 0], comp_B_C.shape[1], dtype=torch.long)
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), none_B)
    pos_1_C = torch.arange(comp_B_C.shape[1], device=comp_B_C.device).unsqueeze(0)
    return (pos_1_C <= first.unsqueeze(1)).long()


def seeded_step(trainer, batch: list[dict], lengths: list[float], length_of):
    def step(i: int) -> None:
        torch.manual_seed(SEED + i)
        trainers.optimiser_step(trainer, batch)
        if i >= 0:
            lengths.append(length_of(trainer))
    return step


def opsd_length(trainer) -> float:
    return trainer.step_stats["completion_length"]


def sdft_length(trainer) -> float:
    return trainer._metrics["train"]["completions/mean_length"][-1]


def run(b: BenchArgs) -> list[Result]:
    rounds = b.rounds or DEFAULT_ROUNDS
    cfg = replace(b.cfg, probe=replace(b.cfg.probe, every=0))  # the probe is timed by harness/bench/probe.py
    with tempfile.TemporaryDirectory(prefix="bench_step_") as tmp:
        s = trainers.Setup(cfg, trainers.base_path(cfg), Path(tmp))
        opsd, sdft = trainers.opsd(s), trainers.sdft(s)
        batch = trainers.first_batch(opsd)
        sdft_batch = trainers.first_batch(sdft)
        parts = Parts(s, batch, opsd.generation_config, type(opsd.optimizer), opsd.optimizer.defaults)
        lengths: dict[str, list[float]] = {"opsd step": [], "sdft step": []}
        times = interleave({
            "opsd step": seeded_step(opsd, batch, lengths["opsd step"], opsd_length),
            "sdft step": seeded_step(sdft, sdft_batch, lengths["sdft step"], sdft_length),
            "parts": parts,
        }, rounds)
    part_sum = [sum(xs) for xs in zip(*parts.times.values())]
    lengths["parts"] = parts.lengths
    details = {"parts_median_s": {k: median(v) for k, v in parts.times.items()},
               "parts_samples_s": parts.times, "parts_way_with_glue_s": times["parts"],
               "mean_completion_length": {k: median(v) for k, v in lengths.items()},
               "rollouts": cfg.train.prompts_per_step, "teacher": cfg.teacher.mode,
               "lora_r": cfg.model.lora.r}
    opsd_s, sdft_s, parts_s = median(times["opsd step"]), median(times["sdft step"]), median(part_sum)
    samples = {"opsd step": times["opsd step"], "sdft step": times["sdft step"], "sum of parts": part_sum}
    return [
        Result("opsd_vs_sdft", "OPSD optimiser step vs TRL SDFTTrainer step (same model, batch, settings)",
               opsd_s / sdft_s, "opsd step / sdft step", Target("<=", 1.10),
               {k: samples[k] for k in ("opsd step", "sdft step")}, details=details,
               limits=sdft_note(opsd_s, sdft_s)),
        Result("opsd_vs_parts", "OPSD optimiser step vs its necessary parts alone (sampling, teacher "
               "forward, student forward+backward+optimizer)", opsd_s / parts_s, "opsd step / sum of parts",
               Target("<=", 1.2), {k: samples[k] for k in ("opsd step", "sum of parts")}, details=details,
               limits=overhead_note(opsd_s, parts.times)),
    ]


def sdft_note(opsd_s: float, sdft_s: float) -> str:
    if opsd_s <= sdft_s:
        return f"no overhead measured ({1000 * (opsd_s - sdft_s):+.0f} ms a step: within the noise)"
    return (f"OPSD adds {1000 * (opsd_s - sdft_s):+.0f} ms a step: grading the rollouts, its teacher "
            "ids built per problem, the logged mismatch both ways and entropies")


def overhead_note(opsd_s: float, part_times: dict[str, list[float]]) -> str:
    meds = {k: median(v) for k, v in part_times.items()}
    parts = ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in meds.items())
    return (f"{parts}; the step's {1000 * (opsd_s - sum(meds.values())):+.0f} ms beyond them: TRL's batch "
            "assembly and tokenising, grading, the logged statistics")
