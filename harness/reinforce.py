"""The ATESD policy and its learning: r ~ Beta(a, b) from a small MLP, trained by REINFORCE.

python -m pytest -q tests/test_controller.py     # used by harness/controller.py

  (a_k, b_k)     = 1 + softplus(MLP(s_k)), so a, b >= 1 (choice: unimodal or flat, never U-shaped)
  r_k ~ Beta(a_k, b_k)   the exposure held for the window's H steps
  R_k            = sum_{j<W} gamma^j delta_(k+j), known once windows k..k+W-1 have ended
  update         loss = -(R_k - baseline) log pi(r_k | s_k) - c * entropy(pi(. | s_k)), Adam;
                 baseline <- baseline + rate * (R_k - baseline)
Its randomness is its own (numpy Generator; the policy's init under a forked torch
RNG), so it never moves the training RNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.config import ControllerConfig

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
