"""ATESD: a learned Beta-policy controller of the teacher's exposure, trained by REINFORCE.

python -m harness.run method=atesd profile=smoke   # ablations: ablation=<name>, README.md (ATESD section)

One decision per hold window of H optimiser steps:
  s_k            state: normalised training statistics at the window's start
  (a_k, b_k)     = 1 + softplus(MLP(s_k)), so a, b >= 1 (choice: unimodal or flat, never U-shaped)
  r_k ~ Beta(a_k, b_k)   the exposure held for the window's H steps
  P_k            learning progress at the window's end; delta_k = P_k - P_(k-1)
  R_k            = sum_{j<W} gamma^j delta_(k+j), known once windows k..k+W-1 have ended
  update         loss = -(R_k - baseline) log pi(r_k | s_k) - c * entropy(pi(. | s_k)), Adam;
                 baseline <- baseline + rate * (R_k - baseline)
The controller's randomness is its own (numpy Generator; the policy's init under a
forked torch RNG) and P's sampling runs under a forked RNG, so the controller never
moves the training RNG. Everything it holds is in `state_dict` (checkpointed with
the student by harness/run.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.config import ControllerConfig, RunConfig
from harness.sources import ExposureSource
from harness.tasks.problem import Problem

# Samples are kept off 0 and 1: at a = 1 the Beta log-density there is 0 * log(0) = nan.
R_EPS = 1e-4
# Names of the state features, in the order the policy sees them (logged as ctrl_state_<name>).
FEATURES = ("progress", "prev_exposure", "loss", "mismatch", "accuracy", "entropy", "delta")
# choice: a progress delta of 0.05 (5 validation-accuracy points per window) is a large
# move; tanh(delta / DELTA_SCALE) keeps the feature in (-1, 1) whatever P measures.
DELTA_SCALE = 0.05
# Training statistics the state follows, as EMAs: train-row key -> feature name.
STAT_KEYS = {"loss": "loss", "mismatch_kl_st": "mismatch", "rollout_accuracy": "accuracy",
             "student_entropy": "entropy"}


# ---- the policy ---------------------------------------------------------------------------------
class BetaPolicy(nn.Module):
    """state_B_S -> (a_B, b_B) with a, b >= 1. The last layer starts at zero: every state
    then gives Beta(1 + log 2, 1 + log 2), a broad bump around 0.5 (choice)."""

    def __init__(self, state_dim: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(state_dim, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, 2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, state_B_S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ab_B_2 = 1.0 + F.softplus(self.head(self.body(state_B_S)))
        return ab_B_2[:, 0], ab_B_2[:, 1]

    def dist(self, state_B_S: torch.Tensor) -> torch.distributions.Beta:
        a_B, b_B = self(state_B_S)
        return torch.distributions.Beta(a_B, b_B)


def sample_beta(rng: np.random.Generator, a: float, b: float) -> float:
    """One exposure r ~ Beta(a, b) from the controller's own generator, kept in [R_EPS, 1 - R_EPS]."""
    return float(min(max(rng.beta(a, b), R_EPS), 1.0 - R_EPS))


def discounted_reward(deltas: Sequence[float], gamma: float) -> float:
    """R = sum_j gamma^j delta_j over the W windows that follow a decision (gamma^0 = 1)."""
    return float(sum(gamma ** j * d for j, d in enumerate(deltas)))


@dataclass
class Decision:
    """One sampled exposure: the window it governs, what the policy saw, what it drew."""

    window: int
    state: list[float]
    r: float
    a: float
    b: float


class Reinforce:
    """The Beta policy, its Adam optimiser, the EMA baseline and the decisions awaiting credit."""

    def __init__(self, state_dim: int, cc: ControllerConfig, seed: int) -> None:
        self.cc = cc
        with torch.random.fork_rng(devices=[]):  # the policy's init must not move the training RNG
            torch.manual_seed(seed)
            self.policy = BetaPolicy(state_dim, cc.hidden_size)
        self.optim = torch.optim.Adam(self.policy.parameters(), lr=cc.lr)
        self.rng = np.random.default_rng([seed, 0xA7E5D])  # a stream of its own
        self.baseline: float | None = None  # choice: starts at the first reward (no arbitrary push)
        self.pending: list[Decision] = []
        self.deltas: dict[int, float | None] = {}

    def decide(self, window: int, state: list[float]) -> Decision:
        with torch.no_grad():
            a_B, b_B = self.policy(torch.tensor([state], dtype=torch.float32))
        a, b = a_B.item(), b_B.item()
        d = Decision(window, list(state), sample_beta(self.rng, a, b), a, b)
        self.pending.append(d)
        return d

    def end_window(self, window: int, delta: float | None) -> dict[str, Any]:
        """Record delta_window; credit and learn from the decision whose W windows have ended
        (decision window - W + 1: one per window).

        A decision whose reward would need an undefined delta (train_loss progress has no
        P before the first window) is dropped; decisions whose windows outrun training are
        never credited (choice: a partial sum would score late decisions on fewer windows).
        """
        self.deltas[window] = delta
        w = self.cc.credit_windows
        ready = [d for d in self.pending if d.window + w - 1 <= window]
        self.pending = [d for d in self.pending if d.window + w - 1 > window]
        credited = []
        for d in ready:
            ds = [self.deltas.get(d.window + j) for j in range(w)]
            if all(x is not None for x in ds):
                credited.append((d, discounted_reward(ds, self.cc.gamma)))
        if not credited:
            return {"ctrl_baseline": self.baseline}
        loss = self.update(credited)
        last, reward = credited[-1]
        return {"ctrl_credited": last.window, "ctrl_reward": reward, "ctrl_baseline": self.baseline,
                "ctrl_policy_loss": loss}

    def update(self, credited: list[tuple[Decision, float]]) -> float:
        """One REINFORCE step on the credited decisions; the baseline moves after it."""
        rewards = [R for _, R in credited]
        if self.baseline is None:
            self.baseline = rewards[0]
        state_B_S = torch.tensor([d.state for d, _ in credited], dtype=torch.float32)
        r_B = torch.tensor([d.r for d, _ in credited], dtype=torch.float32)
        # the baseline before this update: it must not contain the reward it is compared with
        adv_B = torch.tensor([R - self.baseline for R in rewards], dtype=torch.float32)
        dist = self.policy.dist(state_B_S)
        loss = -(adv_B * dist.log_prob(r_B)).mean() - self.cc.entropy_bonus * dist.entropy().mean()
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        for R in rewards:
            self.baseline += self.cc.baseline_rate * (R - self.baseline)
        return loss.item()

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optim": self.optim.state_dict(),
                "rng": self.rng.bit_generator.state, "baseline": self.baseline,
                "pending": [asdict(d) for d in self.pending], "deltas": dict(self.deltas)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optim.load_state_dict(state["optim"])
        self.rng.bit_generator.state = state["rng"]
        self.baseline = state["baseline"]
        self.pending = [Decision(**d) for d in state["pending"]]
        self.deltas = dict(state["deltas"])


# ---- the state ----------------------------------------------------------------------------------
class StatsEMA:
    """EMAs of the training statistics the state reads; the first value initialises each."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.values: dict[str, float] = {}

    def update(self, row: dict[str, Any]) -> None:
        for key, name in STAT_KEYS.items():
            x = row.get(key)
            if x is None or not math.isfinite(x):
                continue
            old = self.values.get(name)
            self.values[name] = x if old is None else old + self.rate * (x - old)

    def features(self, progress: float, prev_exposure: float, last_delta: float) -> list[float]:
        """FEATURES, normalised (choice): log1p of the non-negative unbounded statistics,
        accuracy and t/T as they are, the last delta squashed by tanh. 0 before any data."""
        v = self.values
        return [progress, prev_exposure, math.log1p(max(v.get("loss", 0.0), 0.0)),
                math.log1p(max(v.get("mismatch", 0.0), 0.0)), v.get("accuracy", 0.0),
                math.log1p(max(v.get("entropy", 0.0), 0.0)), math.tanh(last_delta / DELTA_SCALE)]


# ---- learning progress --------------------------------------------------------------------------
@contextmanager
def rng_untouched(model) -> Iterator[None]:
    """Sampling reseeds the global RNG; fork it so training draws what it would have drawn."""
    dev = next(model.parameters()).device
    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


def val_accuracy(model, tokenizer, cfg: RunConfig, problems: list[Problem]) -> float:
    """Share of correct answers of the student (no reference), k samples per problem."""
    from harness.evaluate import prompts_for
    from harness.sampling import sample_completions
    from harness.tasks.grading import grade

    cc = cfg.controller
    with rng_untouched(model):
        completions_P_K = sample_completions(
            model, tokenizer, prompts_for(problems, cfg, tokenizer, None), cc.progress_samples,
            cc.progress_temperature, 1.0, cfg.eval.max_new_tokens, cc.progress_batch_size,
            cc.progress_seed)
    correct = [grade(cfg.task.grader, text, p.answer)[1]
               for p, texts in zip(problems, completions_P_K) for text in texts]
    return sum(correct) / len(correct)


@torch.no_grad()
def ref_nll(model, tokenizer, cfg: RunConfig, problems: list[Problem]) -> float:
    """Per-token NLL of the reference solutions (the SFT completion format) after the
    student prompt, teacher-forced; sequences right-padded (positions stay 0..T-1)."""
    from harness.base import templates_of

    tpl, pad_id = templates_of(cfg), tokenizer.pad_token_id
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    total, count = 0.0, 0
    step = cfg.controller.progress_batch_size
    for start in range(0, len(problems), step):
        chunk = problems[start:start + step]
        prompt_ids = tokenizer([tpl.student_prompt(p.problem) for p in chunk],
                               add_special_tokens=False)["input_ids"]
        target_ids = tokenizer([" " + p.solution + tokenizer.eos_token for p in chunk],
                               add_special_tokens=False)["input_ids"]
        seqs = [p + t for p, t in zip(prompt_ids, target_ids)]
        width = max(len(s) for s in seqs)
        ids_B_T = torch.tensor([s + [pad_id] * (width - len(s)) for s in seqs], device=dev)
        attn_B_T = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=dev)
        target_B_T = torch.tensor([[0] * len(p) + [1] * len(t) + [0] * (width - len(p) - len(t))
                                   for p, t in zip(prompt_ids, target_ids)], device=dev)
        logits_B_T_V = model(input_ids=ids_B_T, attention_mask=attn_B_T).logits.float()
        logp_B_T1 = torch.log_softmax(logits_B_T_V[:, :-1], -1).gather(
            -1, ids_B_T[:, 1:, None]).squeeze(-1)
        mask_B_T1 = target_B_T[:, 1:].float()
        total += -(logp_B_T1 * mask_B_T1).sum().item()
        count += int(mask_B_T1.sum().item())
    model.train(was_training)
    return total / max(count, 1)


# ---- the exposure source ------------------------------------------------------------------------
class ControllerExposure(ExposureSource):
    """ATESD as an ExposureSource: holds r for H steps, measures P, learns, logs one row a window."""

    def __init__(self, cfg: RunConfig, evaluator: tuple[Any, Any] | None) -> None:
        super().__init__(cfg.train.steps)
        self.cfg, self.cc = cfg, cfg.controller
        self.problems: list[Problem] = evaluator[0].validation if evaluator else []
        if self.cc.progress != "train_loss" and not self.problems:
            raise ValueError(f"controller.progress={self.cc.progress} needs validation problems")
        self.learner = Reinforce(len(FEATURES), self.cc, cfg.seed)
        self.stats = StatsEMA(self.cc.state_ema)
        self.window, self.window_start = 0, 0
        self.window_losses: list[float] = []
        self.progress_prev: float | None = None
        self.last_delta = 0.0
        self.model = self.tokenizer = None
        self.decision = self.learner.decide(0, self.policy_input(prev_exposure=0.0))

    def policy_input(self, prev_exposure: float) -> list[float]:
        if self.cc.state == "none":  # context-free bandit: the policy sees a constant
            return [0.0] * len(FEATURES)
        return self.stats.features(self.step / self.total_steps, prev_exposure, self.last_delta)

    def bind(self, model, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer
        if self.progress_prev is None and self.cc.progress != "train_loss":  # P_(-1), not on resume
            self.progress_prev = self.measure()

    def measure(self) -> float:
        """P at the end of the current window (higher is better)."""
        if self.cc.progress == "train_loss":
            return -sum(self.window_losses) / max(len(self.window_losses), 1)
        if self.model is None:
            raise RuntimeError("ControllerExposure.bind(model, tokenizer) was not called")
        if self.cc.progress == "ref_nll":
            return -ref_nll(self.model, self.tokenizer, self.cfg, self.problems)
        return val_accuracy(self.model, self.tokenizer, self.cfg, self.problems)

    def current(self) -> float:
        return self.decision.r

    def step_end(self, step: int, stats: dict[str, float]) -> list[dict[str, Any]]:
        super().step_end(step, stats)
        self.stats.update(stats)
        if stats.get("loss") is not None:
            self.window_losses.append(float(stats["loss"]))
        if step - self.window_start < self.cc.hold and step < self.total_steps:
            return []
        return [self.end_window(step)]

    def end_window(self, step: int) -> dict[str, Any]:
        t0 = time.time()
        p = self.measure()
        delta = None if self.progress_prev is None else p - self.progress_prev
        credit = self.learner.end_window(self.window, delta)
        d = self.decision
        row = {"window": self.window, "ctrl_r": d.r, "ctrl_a": d.a, "ctrl_b": d.b,
               **{f"ctrl_state_{n}": x for n, x in zip(FEATURES, d.state)},
               "ctrl_progress": p, "ctrl_delta": delta, **credit,
               "ctrl_seconds": round(time.time() - t0, 3)}
        self.progress_prev, self.last_delta = p, (delta or 0.0)
        self.window, self.window_start, self.window_losses = self.window + 1, step, []
        if step < self.total_steps:  # no decision after the last window: it would never act
            self.decision = self.learner.decide(self.window, self.policy_input(prev_exposure=d.r))
        return row

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "window": self.window, "window_start": self.window_start,
                "window_losses": list(self.window_losses), "progress_prev": self.progress_prev,
                "last_delta": self.last_delta, "decision": asdict(self.decision),
                "stats": dict(self.stats.values), "learner": self.learner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.window, self.window_start = state["step"], state["window"], state["window_start"]
        self.window_losses = list(state["window_losses"])
        self.progress_prev, self.last_delta = state["progress_prev"], state["last_delta"]
        self.decision = Decision(**state["decision"])
        self.stats.values = dict(state["stats"])
        self.learner.load_state_dict(state["learner"])
