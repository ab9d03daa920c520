"""Learning progress P of the student, measured at each hold window's end (ATESD's reward).

python -m harness.run method=atesd controller.progress=ref_nll profile=smoke   # one of these runs

val_accuracy: the student's share of correct answers (no reference) on validation
problems, sampled with a fixed seed under a forked RNG, so measuring never moves the
training's draws. ref_nll: the student's per-token NLL of the reference solutions
(also the shipped base model's check number, harness/models/basecheck.py). reference_logp:
the teacher-forced log-probability of the references after any prompts, by any model
(ref_nll's core; the paper reward's teacher term, harness/sources/paper_reward.py), one row
at a time from final hidden states through the LM head in blocks: at Qwen3's vocabulary and
references of 20k tokens it never builds a [rows x tokens x vocabulary] logits tensor. A row
is capped at the model's context (config.max_position_embeddings, 40,960 on Qwen3): reference
tokens past it are not scored (a 21k-token teacher prompt plus a 20k-token reference can pass it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from harness.compute.vllm_backend import rollout_engine, sample_on_rollout_engine
from harness.config.schema import RunConfig
from harness.evaluation.sampling import sample_completions
from harness.losses.chunked import block_tokens
from harness.losses.hidden_states import final_hidden, lm_head, unwrap
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
    eval.max_new_tokens (a thinking budget of tens of thousands of tokens, every window).
    Sampled on the run's colocated vLLM rollout engine where it has one (per-prompt seeds from
    controller.progress_seed; harness/compute/vllm_backend.py sample_on_rollout_engine), else
    with HF generate under a forked RNG."""
    cc = cfg.controller
    prompts = prompts_for(problems, cfg, tokenizer, None)
    completions_P_K = None
    engine = rollout_engine(model)  # TRL's colocated vLLM engine where the run has one (CUDA)
    if engine is not None:
        completions_P_K = sample_on_rollout_engine(engine, tokenizer, prompts, cc.progress_samples,
                                                   cc.progress_temperature, 1.0, cc.progress_max_new_tokens,
                                                   cc.progress_seed)
    if completions_P_K is None:  # HF generate: no vLLM, or a prompt past the engine's context
        with rng_untouched(model):
            completions_P_K = sample_completions(
                model, tokenizer, prompts, cc.progress_samples, cc.progress_temperature, 1.0,
                cc.progress_max_new_tokens, cc.progress_batch_size, cc.progress_seed)
    correct = [grade(cfg.task.grader, text, p.answer)[1]
               for p, texts in zip(problems, completions_P_K) for text in texts]
    return sum(correct) / len(correct)


# (ids_1_T, attn_1_T, c_len) -> h_1_C_H: a model's final hidden states at the positions
# predicting the last c_len tokens (harness/losses/hidden_states.py final_hidden)
HiddenFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


@torch.no_grad()
def ref_nll(model, tokenizer, cfg: RunConfig, problems: list[Problem]) -> float:
    """Per-token NLL of the reference solutions (the SFT completion format) after the
    student prompt, teacher-forced (also the shipped base model's check number)."""
    prompts = Prompts(cfg, tokenizer)
    was_training = model.training
    model.eval()
    prompt_ids = tokenizer([prompts.student(p) for p in problems], add_special_tokens=False)["input_ids"]
    total, count = reference_logp(lambda ids, attn, c: final_hidden(model, ids, attn, c), lm_head(model),
                                  next(model.parameters()).device, tokenizer, cfg, problems, prompt_ids,
                                  context_of(model))
    model.train(was_training)
    return -total / max(count, 1)


def context_of(model) -> int | None:
    """The model's trained context in tokens (max_position_embeddings), None if it states none."""
    return getattr(getattr(unwrap(model), "config", None), "max_position_embeddings", None)


def target_logp_sum(h_C_H: torch.Tensor, target_C: torch.Tensor, head: torch.nn.Module, block: int) -> float:
    """sum_t log p(target_t) from hidden states through the LM head, `block` tokens at a time:
    one fp32 [block x V] logits tensor at once, never [T x V] (V = 151,936 on Qwen3)."""
    weight_V_H = head.weight
    bias_V = getattr(head, "bias", None)
    # summed on the device, read once: a .item() per block would wait on the GPU ~370 times a row
    total = torch.zeros((), dtype=torch.float64, device=h_C_H.device)
    for start in range(0, h_C_H.shape[0], block):
        z_n_V = (h_C_H[start:start + block] @ weight_V_H.T).float()
        if bias_V is not None:
            z_n_V = z_n_V + bias_V.float()
        ids_n = target_C[start:start + block]
        total += (z_n_V.gather(-1, ids_n[:, None]).squeeze(-1) - torch.logsumexp(z_n_V, -1)).sum()
    return total.item()


@torch.no_grad()
def reference_logp(hidden: HiddenFn, head: torch.nn.Module, dev: torch.device, tokenizer, cfg: RunConfig,
                   problems: list[Problem], prompt_ids: list[list[int]],
                   max_positions: int | None = None) -> tuple[float, int]:
    """(sum of log p(reference token), number of tokens scored): each problem's reference solution
    (the SFT completion format) teacher-forced after its prompt ids. One sequence at a time
    (no padding: a teacher prompt of 21k tokens plus a reference of 20k is one row's
    activations, never progress_batch_size rows of them), and the log-probs of the target
    tokens only, from the final hidden states through the LM head in blocks of loss.chunk_mb
    (harness/losses/chunked.py block_tokens): no full-vocabulary logits of every position.
    max_positions (the model's context, context_of): a row is cut there, its reference tokens
    past it are not scored; a prompt that fills it scores nothing."""
    prompts = Prompts(cfg, tokenizer)
    chunk_mb = getattr(cfg.loss, "chunk_mb", None) or 64.0
    block = block_tokens(head.weight.shape[0], chunk_mb)
    target_ids = tokenizer([prompts.completion(p.solution) for p in problems],
                           add_special_tokens=False)["input_ids"]
    total, count = 0.0, 0
    for p_ids, t_ids in zip(prompt_ids, target_ids, strict=True):
        if max_positions:
            t_ids = t_ids[:max(0, max_positions - len(p_ids))]
        if not t_ids:
            continue
        ids_1_T = torch.tensor([p_ids + t_ids], device=dev)
        h_C_H = hidden(ids_1_T, torch.ones_like(ids_1_T), len(t_ids))[0]
        total += target_logp_sum(h_C_H, ids_1_T[0, len(p_ids):], head, block)
        count += len(t_ids)
    return total, count
