"""Learning progress P of the student, measured at each hold window's end (ATESD's reward).

python -m harness.run method=atesd controller.progress=ref_nll profile=smoke   # one of these runs

val_accuracy: the student's share of correct answers (no reference) on validation
problems, sampled with a fixed seed under a forked RNG, so measuring never moves the
training's draws. ref_nll: the student's per-token NLL of the reference solutions
(also the shipped base model's check number, harness/models/basecheck.py). reference_logp:
the teacher-forced log-probability of the references after any prompts, by any model
(ref_nll's core; the paper reward's teacher term, harness/sources/paper_reward.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from harness.config.schema import RunConfig
from harness.evaluation.sampling import sample_completions
from harness.prompts.templates import Prompts, prompts_for
from harness.tasks.grading import grade
from harness.tasks.problem import Problem


@contextmanager
def rng_untouched(model) -> Iterator[None]:
    """Sampling reseeds the global RNG; fork it so training draws what it would have drawn."""
    dev = next(model.parameters()).device
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def val_accuracy(model, tokenizer, cfg: RunConfig, problems: list[Problem]) -> float:
    """Share of correct answers of the student (no reference), controller.progress_samples
    per problem of controller.progress_max_new_tokens each: the measure's own budget, never
    eval.max_new_tokens (a thinking budget of tens of thousands of tokens, every window)."""
    cc = cfg.controller
    with rng_untouched(model):
        completions_P_K = sample_completions(
            model, tokenizer, prompts_for(problems, cfg, tokenizer, None), cc.progress_samples,
            cc.progress_temperature, 1.0, cc.progress_max_new_tokens, cc.progress_batch_size,
            cc.progress_seed)
    correct = [grade(cfg.task.grader, text, p.answer)[1]
               for p, texts in zip(problems, completions_P_K) for text in texts]
    return sum(correct) / len(correct)


@torch.no_grad()
def ref_nll(model, tokenizer, cfg: RunConfig, problems: list[Problem]) -> float:
    """Per-token NLL of the reference solutions (the SFT completion format) after the
    student prompt, teacher-forced (also the shipped base model's check number)."""
    prompts = Prompts(cfg, tokenizer)
    was_training = model.training
    model.eval()
    prompt_ids = tokenizer([prompts.student(p) for p in problems], add_special_tokens=False)["input_ids"]
    total, count = reference_logp(lambda ids, attn: model(input_ids=ids, attention_mask=attn).logits,
                                  next(model.parameters()).device, tokenizer, cfg, problems, prompt_ids)
    model.train(was_training)
    return -total / max(count, 1)


@torch.no_grad()
def reference_logp(forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], dev: torch.device,
                   tokenizer, cfg: RunConfig, problems: list[Problem],
                   prompt_ids: list[list[int]]) -> tuple[float, int]:
    """(sum of log p(reference token), number of tokens): each problem's reference solution
    (the SFT completion format) teacher-forced after its prompt ids, by
    `forward(ids_B_T, attn_B_T) -> logits_B_T_V`, controller.progress_batch_size sequences
    a call; sequences right-padded (positions stay 0..T-1)."""
    prompts, pad_id = Prompts(cfg, tokenizer), tokenizer.pad_token_id
    total, count = 0.0, 0
    step = cfg.controller.progress_batch_size
    for start in range(0, len(problems), step):
        chunk = problems[start:start + step]
        chunk_prompt_ids = prompt_ids[start:start + step]
        target_ids = tokenizer([prompts.completion(p.solution) for p in chunk],
                               add_special_tokens=False)["input_ids"]
        seqs = [p + t for p, t in zip(chunk_prompt_ids, target_ids)]
        width = max(len(s) for s in seqs)
        ids_B_T = torch.tensor([s + [pad_id] * (width - len(s)) for s in seqs], device=dev)
        attn_B_T = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=dev)
        target_B_T = torch.tensor([[0] * len(p) + [1] * len(t) + [0] * (width - len(p) - len(t))
                                   for p, t in zip(chunk_prompt_ids, target_ids)], device=dev)
        logits_B_T_V = forward(ids_B_T, attn_B_T).float()
        logp_B_T1 = torch.log_softmax(logits_B_T_V[:, :-1], -1).gather(
            -1, ids_B_T[:, 1:, None]).squeeze(-1)
        mask_B_T1 = target_B_T[:, 1:].float()
        total += (logp_B_T1 * mask_B_T1).sum().item()
        count += int(mask_B_T1.sum().item())
    return total, count
