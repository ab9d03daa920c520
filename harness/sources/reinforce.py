"""The ATESD policy and its learning: r ~ Beta(a, b) from a small MLP, trained by REINFORCE.

python -m pytest -q tests/test_controller.py     # used by harness/sources/controller.py

  (a_k, b_k)     = 1 + softplus(MLP(s_k)), so a, b >= 1 (choice: unimodal or flat, never U-shaped)
  r_k ~ Beta(a_k, b_k)   the exposure held for the window's H steps
  R_k            = sum_{j<W} gamma^j delta_(k+j), known once windows k..k+W-1 have ended
  update         loss = -(R_k - baseline) log pi(r_k | s_k) - c * entropy(pi(. | s_k)), Adam;
                 baseline <- baseline + rate * (R_k - baseline)
Options (controller.*, all off by default): advantage=normalised, A_k = (R_k - mean) / std
over a running buffer of the last rewards, this one included (choice: a buffer without it
has std 0 after one reward, an unbounded advantage; with it |A| <= sqrt(n - 1));
max_entropy, the paper's upper bound on the policy's entropy (harness/DESIGN.md): entropy_bound=clamp
scales a too-flat Beta's (a, b) by the least s >= 1 that brings H down to the bound (mean
a / (a + b) kept; s found by bisection, detached, so the gradient flows through a and b),
for drawing and for learning alike; entropy_bound=penalty adds the hinge
entropy_penalty * max(0, H[pi(. | s_k)] - max_entropy) to the loss; importance_clip c, the term
weighted by min(pi_now(r_k | s_k) / pi_then(r_k | s_k), c), detached (truncated importance
sampling: with W > 1 the policy has taken W - 1 Adam steps since it drew r_k). Every
update logs the drift mean |log pi_now(r_k | s_k) - log pi_then(r_k | s_k)|.
Its randomness is its own (numpy Generator; the policy's init under a forked torch
RNG), so it never moves the training RNG.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.sources.controller_config import ControllerConfig

MIN_SNR_DECISIONS = 6  # reward_snr: 4 coefficients and at least 2 degrees of freedom
# Samples are kept off 0 and 1: at a = 1 the Beta log-density there is 0 * log(0) = nan.
R_EPS = 1e-4

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


def clamp_entropy(a_B: torch.Tensor, b_B: torch.Tensor, max_entropy: float,
                  iters: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """(s a, s b) with, per row, the least s >= 1 such that H[Beta(s a, s b)] <= max_entropy
    (H falls as the concentration grows at a fixed mean, for a, b >= 1). s: doubling, then
    bisection, without grad; rows already under the bound keep s = 1 exactly."""
    def too_flat(s_B: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Beta(a_B * s_B, b_B * s_B).entropy() > max_entropy

    with torch.no_grad():
        one_B = torch.ones_like(a_B)
        over_B = too_flat(one_B)
        if not over_B.any():
            return a_B, b_B
        lo_B, hi_B = one_B.clone(), one_B.clone()
        for _ in range(60):
            grow_B = too_flat(hi_B)
            if not grow_B.any():
                break
            lo_B, hi_B = torch.where(grow_B, hi_B, lo_B), torch.where(grow_B, 2 * hi_B, hi_B)
        for _ in range(iters):
            mid_B = (lo_B + hi_B) / 2
            flat_B = too_flat(mid_B)
            lo_B, hi_B = torch.where(flat_B, mid_B, lo_B), torch.where(flat_B, hi_B, mid_B)
        s_B = torch.where(over_B, hi_B, one_B)
    return a_B * s_B, b_B * s_B


def sample_beta(rng: np.random.Generator, a: float, b: float) -> float:
    """One exposure r ~ Beta(a, b) from the controller's own generator, kept in [R_EPS, 1 - R_EPS]."""
    return float(min(max(rng.beta(a, b), R_EPS), 1.0 - R_EPS))


def policy_weights(saved: dict[str, Any]) -> dict[str, Any]:
    """The policy's state_dict from what controller.init_policy names: a run's exposure_source.pt
    (ControllerExposure.state_dict: learner -> policy), a Reinforce.state_dict (policy), or the
    policy's own state_dict."""
    if "learner" in saved:
        saved = saved["learner"]
    return saved["policy"] if "policy" in saved else saved


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
    logp: float | None = None  # log pi_then(r | state) when drawn (None: restored from an older run)


def reward_snr(history: Sequence[tuple[int, float, float]]) -> float | None:
    """How much of the rewards' spread the exposure explains, against the rest: the SNR logged
    as ctrl_reward_snr. Over the credited decisions so far, (window k, exposure r, reward R),
    least squares R ~ c0 + c1 k + c2 r + c3 r^2 (k: the trend of progress over training;
    r and r^2: an exposure effect with an interior optimum). SNR = sd of the fitted
    exposure part c2 r + c3 r^2 over the decisions / the residual sd (n - 4 degrees of
    freedom). Pure noise gives about sqrt(2 / (n - 4)) (the fit's own overfitting); a policy
    can learn from the rewards when it is well above that. None before 6 decisions and when
    nothing is left to call noise (rewards an exact function of k and r); 0 when the rewards
    are exactly a trend."""
    n = len(history)
    if n < MIN_SNR_DECISIONS:
        return None
    k_N, r_N, R_N = (np.asarray(col, dtype=float) for col in zip(*history))
    X_N_4 = np.column_stack([np.ones(n), k_N, r_N, r_N ** 2])
    coef, *_ = np.linalg.lstsq(X_N_4, R_N, rcond=None)
    signal = float(np.std(X_N_4[:, 2:] @ coef[2:]))
    noise = float(np.sqrt(((R_N - X_N_4 @ coef) ** 2).sum() / (n - 4)))
    if noise <= 1e-12 * max(1.0, float(np.abs(R_N).max())):
        return 0.0 if signal <= 1e-12 else None
    return signal / noise


class RewardShuffler:
    """The learning control shuffle_rewards=n: the rewards of each block of n consecutive credited
    decisions are permuted among them (its own generator) before the policy learns, so the
    policy learns from the run's real rewards, each exactly once, but not its own. A block is
    learned from once full (n updates, one per decision, as without the control); the last,
    partial block at training's end is permuted among itself."""

    def __init__(self, block: int, seed: int) -> None:
        self.block = block
        self.rng = np.random.default_rng([seed, 0x5AFF1E])  # never moves the policy's draws
        self.held: list[tuple[Decision, float]] = []

    def take(self, credited: list[tuple[Decision, float]], final: bool) -> list[tuple[Decision, float]]:
        """The (decision, shuffled reward) pairs to learn from now (none until a block is full)."""
        self.held += credited
        if not self.held or (len(self.held) < self.block and not final):
            return []
        decisions, rewards = [d for d, _ in self.held], [R for _, R in self.held]
        order = self.rng.permutation(len(rewards))
        self.held = []
        return [(d, rewards[i]) for d, i in zip(decisions, order)]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "held": [(asdict(d), R) for d, R in self.held]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.held = [(Decision(**d), R) for d, R in state["held"]]


class Reinforce:
    """The Beta policy, its Adam optimiser, the EMA baseline and the decisions awaiting credit."""

    def __init__(self, state_dim: int, cc: ControllerConfig, seed: int) -> None:
        self.cc = cc
        with torch.random.fork_rng(devices=[]):  # the policy's init must not move the training RNG
            torch.manual_seed(seed)
            self.policy = BetaPolicy(state_dim, cc.hidden_size)
        if cc.init_policy is not None:
            self.policy.load_state_dict(policy_weights(torch.load(cc.init_policy, weights_only=False)))
        self.optim = torch.optim.Adam(self.policy.parameters(), lr=cc.lr)
        self.rng = np.random.default_rng([seed, 0xA7E5D])  # a stream of its own
        self.baseline: float | None = None  # choice: starts at the first reward (no arbitrary push)
        self.rewards: deque[float] = deque(maxlen=cc.advantage_buffer)  # advantage=normalised
        self.pending: list[Decision] = []
        self.history: list[tuple[int, float, float]] = []  # (window, r, R) of every credited decision
        self.shuffler = (RewardShuffler(cc.shuffle_rewards, seed) if cc.shuffle_rewards >= 2 else None)
        self.deltas: dict[int, float | None] = {}

    def decide(self, window: int, state: list[float]) -> Decision:
        with torch.no_grad():
            a_B, b_B = self.ab(torch.tensor([state], dtype=torch.float32))
            a, b = a_B.item(), b_B.item()
            r = sample_beta(self.rng, a, b)
            logp = torch.distributions.Beta(a_B, b_B).log_prob(torch.tensor([r])).item()
        d = Decision(window, list(state), r, a, b, logp)
        self.pending.append(d)
        return d

    def ab(self, state_B_S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy's (a, b), clamped to the entropy bound when entropy_bound=clamp."""
        a_B, b_B = self.policy(state_B_S)
        if self.cc.max_entropy is not None and self.cc.entropy_bound == "clamp":
            return clamp_entropy(a_B, b_B, self.cc.max_entropy)
        return a_B, b_B

    def dist(self, state_B_S: torch.Tensor) -> torch.distributions.Beta:
        return torch.distributions.Beta(*self.ab(state_B_S))

    def take_ready(self, ready: Callable[[Decision], bool]) -> list[Decision]:
        """Remove and return the pending decisions for which `ready` holds (paper reward)."""
        out = [d for d in self.pending if ready(d)]
        self.pending = [d for d in self.pending if not ready(d)]
        return out

    def end_window(self, window: int, delta: float | None, final: bool = False) -> dict[str, Any]:
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
        return self.learn(credited, final)

    def learn(self, credited: list[tuple[Decision, float]], final: bool = False) -> dict[str, Any]:
        """Update on the credited (decision, reward) pairs; the controller row's learning keys.
        shuffle_rewards: the pairs go through the shuffler first (final: training's last window,
        the shuffler's partial block is released too)."""
        out: dict[str, Any] = {}
        if credited:
            last, reward = credited[-1]
            self.history += [(d.window, d.r, R) for d, R in credited]
            out = {"ctrl_credited": last.window, "ctrl_reward": reward,
                   "ctrl_reward_snr": reward_snr(self.history)}
        if self.shuffler is None:
            if credited:
                loss, extra = self.update(credited)
                out |= {"ctrl_policy_loss": loss, **extra}
        else:
            for pair in self.shuffler.take(credited, final):
                loss, extra = self.update([pair])
                out |= {"ctrl_policy_loss": loss, "ctrl_reward_used": pair[1], **extra}
        return out | {"ctrl_baseline": self.baseline_value()}

    def baseline_value(self) -> float | None:
        """What rewards are compared with: the EMA baseline, or the normalising buffer's mean."""
        if self.cc.advantage == "baseline":
            return self.baseline
        return float(np.mean(self.rewards)) if self.rewards else None

    def advantages(self, rewards: list[float]) -> list[float]:
        if self.cc.advantage == "normalised":
            self.rewards.extend(rewards)
            mean, std = float(np.mean(self.rewards)), float(np.std(self.rewards))
            return [(R - mean) / std if std > 1e-12 else 0.0 for R in rewards]
        if self.baseline is None:
            self.baseline = rewards[0]
        # the baseline before this update: it must not contain the reward it is compared with
        return [R - self.baseline for R in rewards]

    def update(self, credited: list[tuple[Decision, float]]) -> tuple[float, dict[str, Any]]:
        """One REINFORCE step on the credited decisions; the EMA baseline moves after it.
        lr = 0 (the frozen-policy control) computes and logs everything but takes no step."""
        rewards = [R for _, R in credited]
        state_B_S = torch.tensor([d.state for d, _ in credited], dtype=torch.float32)
        r_B = torch.tensor([d.r for d, _ in credited], dtype=torch.float32)
        adv_B = torch.tensor(self.advantages(rewards), dtype=torch.float32)
        dist = self.dist(state_B_S)
        logp_B, entropy_B = dist.log_prob(r_B), dist.entropy()
        extra = {"ctrl_advantage": adv_B[-1].item(), "ctrl_policy_entropy": entropy_B.mean().item(),
                 **self.drift(credited, logp_B)}
        if self.cc.importance_clip is None:
            loss = -(adv_B * logp_B).mean() - self.cc.entropy_bonus * entropy_B.mean()
        else:
            weight_B = self.importance_weights(credited, logp_B)
            extra["ctrl_is_weight"] = weight_B.mean().item()
            loss = -(weight_B * adv_B * logp_B).mean() - self.cc.entropy_bonus * entropy_B.mean()
        if self.cc.max_entropy is not None and self.cc.entropy_bound == "penalty":
            loss = loss + self.cc.entropy_penalty * F.relu(entropy_B - self.cc.max_entropy).mean()
        if self.cc.lr > 0:  # lr 0: the policy stays bit-equal (Adam's step would still touch it)
            self.optim.zero_grad()
            loss.backward()
            self.optim.step()
        if self.cc.advantage == "baseline":
            for R in rewards:
                self.baseline += self.cc.baseline_rate * (R - self.baseline)
        return loss.item(), extra

    @staticmethod
    def drift(credited: list[tuple[Decision, float]], logp_B: torch.Tensor) -> dict[str, float]:
        """Mean |log pi_now(r_k | s_k) - log pi_then(r_k | s_k)| over the credited decisions."""
        diffs = [abs(now - d.logp) for (d, _), now in zip(credited, logp_B.tolist()) if d.logp is not None]
        return {"ctrl_logp_drift": sum(diffs) / len(diffs)} if diffs else {}

    def importance_weights(self, credited: list[tuple[Decision, float]],
                           logp_B: torch.Tensor) -> torch.Tensor:
        """min(pi_now / pi_then, c), detached: the off-policy correction of the REINFORCE term
        (truncated importance sampling, Espeholt et al. 2018, V-trace's rho-bar); 1 where
        pi_then is unknown."""
        then_B = torch.tensor([d.logp if d.logp is not None else math.nan for d, _ in credited])
        ratio_B = torch.exp(logp_B.detach() - then_B).nan_to_num(nan=1.0)
        return ratio_B.clamp(max=self.cc.importance_clip)

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy.state_dict(), "optim": self.optim.state_dict(),
                "rng": self.rng.bit_generator.state, "baseline": self.baseline,
                "rewards": list(self.rewards), "history": list(self.history),
                "shuffler": self.shuffler.state_dict() if self.shuffler is not None else None,
                "pending": [asdict(d) for d in self.pending], "deltas": dict(self.deltas)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optim.load_state_dict(state["optim"])
        self.rng.bit_generator.state = state["rng"]
        self.baseline = state["baseline"]
        self.rewards = deque(state.get("rewards", []), maxlen=self.cc.advantage_buffer)
        self.pending = [Decision(**d) for d in state["pending"]]
        self.deltas = dict(state["deltas"])
        self.history = [tuple(h) for h in state.get("history", [])]
        if self.shuffler is not None:
            self.shuffler.load_state_dict(state["shuffler"])
