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

This module holds the state (EMAs of the training statistics) and the hold-window
loop; the policy and its REINFORCE update are in harness/reinforce.py, the progress
measures P in harness/learning_progress.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any

from harness.config import RunConfig
from harness.exposure_source import ExposureSource
from harness.learning_progress import ref_nll, val_accuracy
from harness.reinforce import Decision, Reinforce
from harness.tasks.problem import Problem

# Names of the state features, in the order the policy sees them (logged as ctrl_state_<name>).
FEATURES = ("progress", "prev_exposure", "loss", "mismatch", "accuracy", "entropy", "delta")
# choice: a progress delta of 0.05 (5 validation-accuracy points per window) is a large
# move; tanh(delta / DELTA_SCALE) keeps the feature in (-1, 1) whatever P measures.
DELTA_SCALE = 0.05
# Training statistics the state follows, as EMAs: train-row key -> feature name.
STAT_KEYS = {"loss": "loss", "mismatch_kl_st": "mismatch", "rollout_accuracy": "accuracy",
             "student_entropy": "entropy"}


# ---- the state ---------------------------------------------------------------------------------
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


# ---- the exposure source -----------------------------------------------------------------------
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
