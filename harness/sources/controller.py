"""ATESD: a learned Beta-policy controller of the teacher's exposure, trained by REINFORCE.

python -m harness.run method=atesd profile=smoke   # ablations: ablation=<name>, README.md (ATESD section)

One decision per hold window of H optimiser steps:
  s_k            state: normalised training statistics at the window's start
  (a_k, b_k)     = 1 + softplus(MLP(s_k)), so a, b >= 1 (choice: unimodal or flat, never U-shaped)
  r_k ~ Beta(a_k, b_k)   the exposure held for the window's H steps
  P_k            learning progress at the window's end; delta_k = P_k - P_(k-1)
  R_k            = sum_{j<W} gamma^j delta_(k+j), known once windows k..k+W-1 have ended
                 (reward=progress); reward=paper: discounted positive drops of the
                 distillation loss over `lookahead` steps + lambda_gt * the teacher's
                 log-prob of the reference (harness/sources/paper_reward.py)
  update         loss = -(R_k - baseline) log pi(r_k | s_k) - c * entropy(pi(. | s_k)), Adam;
                 baseline <- baseline + rate * (R_k - baseline)
The controller's randomness is its own (numpy Generator; the policy's init under a
forked torch RNG) and P's sampling runs under a forked RNG, so the controller never
moves the training RNG. Everything it holds is in `state_dict` (checkpointed with
the student by harness/run.py).

This module holds the state (EMAs of the training statistics) and the hold-window
loop; the policy and its REINFORCE update are in harness/sources/reinforce.py, the progress
measures P in harness/sources/learning_progress.py, the paper's reward in harness/sources/paper_reward.py.
state=paper adds the paper's two state features (harness/DESIGN.md): the student's probe NLL of
the validation references (measured at each window's end; P itself when
progress=ref_nll) and its confidence (EMA of the train rows' student_confidence).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any, Protocol

from harness.config.schema import RunConfig
from harness.sources.base import ExposureSource
from harness.sources.learning_progress import ref_nll, val_accuracy
from harness.sources.paper_reward import LossDropCredit, TeacherView, teacher_ref_logp
from harness.sources.reinforce import Decision, Reinforce
from harness.tasks.problem import Problem

# Names of the state features, in the order the policy sees them (logged as ctrl_state_<name>).
FEATURES = ("progress", "prev_exposure", "loss", "mismatch", "accuracy", "entropy", "delta")
PAPER_FEATURES = (*FEATURES, "probe_nll", "confidence")  # state=paper
# choice: a progress delta of 0.05 (5 validation-accuracy points per window) is a large
# move; tanh(delta / DELTA_SCALE) keeps the feature in (-1, 1) whatever P measures.
DELTA_SCALE = 0.05
# Training statistics the state follows, as EMAs: train-row key -> feature name.
STAT_KEYS = {"loss": "loss", "mismatch_kl_st": "mismatch", "rollout_accuracy": "accuracy",
             "student_entropy": "entropy"}
PAPER_STAT_KEYS = {**STAT_KEYS, "student_confidence": "confidence"}


# ---- the state ---------------------------------------------------------------------------------
class StatsEMA:
    """EMAs of the training statistics the state reads; the first value initialises each."""

    def __init__(self, rate: float, keys: dict[str, str] = STAT_KEYS) -> None:
        self.rate, self.keys = rate, keys
        self.values: dict[str, float] = {}

    def update(self, row: dict[str, Any]) -> None:
        for key, name in self.keys.items():
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

    def paper_features(self, probe_nll: float) -> list[float]:
        """The two features state=paper adds: log1p(probe NLL), confidence in [0, 1] as it is."""
        return [math.log1p(max(probe_nll, 0.0)), self.values.get("confidence", 0.0)]


# ---- what the controller measures ----------------------------------------------------------------
class Measures(Protocol):
    """The seam between the controller and what it measures: the student (ModelMeasures, real runs)
    or a simulated one (harness/policybed/adapter.py), through the same three calls."""

    def progress(self) -> float:
        """P now (controller.progress: val_accuracy or minus ref_nll; higher is better)."""
        ...

    def probe_nll(self) -> float:
        """state=paper: the student's NLL of the validation references now."""
        ...

    def teacher_logp(self, r: float) -> float:
        """reward=paper: G of exposure r, the teacher's mean per-token log-prob of the references."""
        ...


class ModelMeasures:
    """The real measures: the bound student (and teacher) on the validation problems."""

    def __init__(self, cfg: RunConfig, problems: list[Problem], model, tokenizer,
                 teacher: TeacherView | None) -> None:
        self.cfg, self.problems = cfg, problems
        self.model, self.tokenizer, self.teacher = model, tokenizer, teacher

    def progress(self) -> float:
        if self.model is None:
            raise RuntimeError("ControllerExposure.bind(model, tokenizer) was not called")
        if self.cfg.controller.progress == "ref_nll":
            return -ref_nll(self.model, self.tokenizer, self.cfg, self.problems)
        return val_accuracy(self.model, self.tokenizer, self.cfg, self.problems)

    def probe_nll(self) -> float:
        return ref_nll(self.model, self.tokenizer, self.cfg, self.problems)

    def teacher_logp(self, r: float) -> float:
        if self.teacher is None:
            raise RuntimeError("ControllerExposure.bind(model, tokenizer, teacher) got no teacher")
        return teacher_ref_logp(self.teacher, self.tokenizer, self.cfg, self.problems, r)


# ---- the exposure source -----------------------------------------------------------------------
class ControllerExposure(ExposureSource):
    """ATESD as an ExposureSource: holds r for H steps, measures P, learns, logs one row a window.

    measures: what P, the probe NLL and G are read from; None (real runs): the student and
    teacher that bind() hands in (ModelMeasures). The policy test bed passes a simulated
    student's (harness/policybed/adapter.py), so it runs this very class."""

    def __init__(self, cfg: RunConfig, evaluator: tuple[Any, Any] | None,
                 measures: Measures | None = None) -> None:
        super().__init__(cfg.train.steps)
        self.cfg, self.cc = cfg, cfg.controller
        self.problems: list[Problem] = evaluator[0].validation if evaluator else []
        self.measures = measures
        if measures is None and self.cc.progress != "train_loss" and not self.problems:
            raise ValueError(f"controller.progress={self.cc.progress} needs validation problems")
        if measures is None and (self.cc.state == "paper" or self.cc.reward == "paper") and not self.problems:
            raise ValueError("controller.state=paper and reward=paper need validation problems")
        paper_state = self.cc.state == "paper"
        self.features = PAPER_FEATURES if paper_state else FEATURES
        self.learner = Reinforce(len(self.features), self.cc, cfg.seed)
        self.stats = StatsEMA(self.cc.state_ema, PAPER_STAT_KEYS if paper_state else STAT_KEYS)
        self.credit = LossDropCredit(self.cc) if self.cc.reward == "paper" else None
        self.probe_nll = 0.0  # state=paper: the student's NLL at the last window end (0 before)
        self.teacher: TeacherView | None = None
        self.window, self.window_start = 0, 0
        self.window_losses: list[float] = []
        self.progress_prev: float | None = None
        self.last_delta = 0.0
        self.model = self.tokenizer = None
        self.decision = self.learner.decide(0, self.policy_input(prev_exposure=0.0))

    def policy_input(self, prev_exposure: float) -> list[float]:
        if self.cc.state == "none":  # context-free bandit: the policy sees a constant
            return [0.0] * len(self.features)
        x = self.stats.features(self.step / self.total_steps, prev_exposure, self.last_delta)
        return x + self.stats.paper_features(self.probe_nll) if self.cc.state == "paper" else x

    def bind(self, model, tokenizer, teacher: TeacherView | None = None) -> None:
        self.model, self.tokenizer, self.teacher = model, tokenizer, teacher
        # measures given at construction (the test bed) stay: the model is not what they read
        if self.measures is None or isinstance(self.measures, ModelMeasures):
            self.measures = ModelMeasures(self.cfg, self.problems, model, tokenizer, teacher)
        if self.progress_prev is None and self.cc.progress != "train_loss":  # P_(-1), not on resume
            self.progress_prev = self.measure()

    def the_measures(self) -> Measures:
        if self.measures is None:
            raise RuntimeError("ControllerExposure.bind(model, tokenizer) was not called")
        return self.measures

    def measure(self) -> float:
        """P at the end of the current window (higher is better)."""
        if self.cc.progress == "train_loss":
            return -sum(self.window_losses) / max(len(self.window_losses), 1)
        return self.the_measures().progress()

    def measure_probe_nll(self, p: float) -> float:
        """state=paper: the student's NLL of the validation references (P is minus it under ref_nll)."""
        if self.cc.progress == "ref_nll":
            return -p
        return self.the_measures().probe_nll()

    def measure_teacher_logp(self, r: float) -> float:
        """reward=paper: G of exposure r (harness/sources/paper_reward.py)."""
        return self.the_measures().teacher_logp(r)

    def current(self) -> float:
        return self.decision.r

    def step_end(self, step: int, stats: dict[str, float]) -> list[dict[str, Any]]:
        super().step_end(step, stats)
        self.stats.update(stats)
        if stats.get("loss") is not None:
            self.window_losses.append(float(stats["loss"]))
        if self.credit is not None:
            self.credit.record(step, self.window, stats.get("loss"))
        if step - self.window_start < self.cc.hold and step < self.total_steps:
            return []
        return [self.end_window(step)]

    def end_window(self, step: int) -> dict[str, Any]:
        t0 = time.time()
        p = self.measure()
        delta = None if self.progress_prev is None else p - self.progress_prev
        d = self.decision
        measured = self.paper_measures(p, d.r)
        final = step >= self.total_steps
        if self.credit is None:
            credit = self.learner.end_window(self.window, delta, final)
        else:
            credit = self.paper_credit(step, final)
        row = {"window": self.window, "ctrl_r": d.r, "ctrl_a": d.a, "ctrl_b": d.b,
               "ctrl_policy_mean": d.a / (d.a + d.b), "ctrl_concentration": d.a + d.b,
               **{f"ctrl_state_{n}": x for n, x in zip(self.features, d.state)},
               "ctrl_progress": p, "ctrl_delta": delta, **measured, **credit,
               "ctrl_seconds": round(time.time() - t0, 3)}
        self.progress_prev, self.last_delta = p, (delta or 0.0)
        self.window, self.window_start, self.window_losses = self.window + 1, step, []
        if step < self.total_steps:  # no decision after the last window: it would never act
            self.decision = self.learner.decide(self.window, self.policy_input(prev_exposure=d.r))
        if self.credit is not None:
            self.credit.prune(self.learner.pending)
        return row

    def paper_measures(self, p: float, r: float) -> dict[str, float]:
        """At window k's end: the probe NLL (state=paper) and G of r_k (reward=paper, lambda_gt > 0)."""
        out = {}
        if self.cc.state == "paper":
            self.probe_nll = self.measure_probe_nll(p)
            out["ctrl_probe_nll"] = self.probe_nll
        if self.credit is not None and self.cc.lambda_gt > 0:
            self.credit.teacher_logp[self.window] = out["ctrl_teacher_logp"] = self.measure_teacher_logp(r)
        return out

    def paper_credit(self, step: int, final: bool = False) -> dict[str, Any]:
        """reward=paper: learn from the decisions whose lookahead has ended by this step."""
        assert self.credit is not None
        ready = self.learner.take_ready(lambda d: self.credit.is_ready(d, step))
        credited, terms = self.credit.credit(ready)
        return {**self.learner.learn(credited, final), **terms}

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "window": self.window, "window_start": self.window_start,
                "window_losses": list(self.window_losses), "progress_prev": self.progress_prev,
                "last_delta": self.last_delta, "decision": asdict(self.decision),
                "stats": dict(self.stats.values), "learner": self.learner.state_dict(),
                "probe_nll": self.probe_nll,
                "credit": self.credit.state_dict() if self.credit is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.window, self.window_start = state["step"], state["window"], state["window_start"]
        self.window_losses = list(state["window_losses"])
        self.progress_prev, self.last_delta = state["progress_prev"], state["last_delta"]
        self.decision = Decision(**state["decision"])
        self.stats.values = dict(state["stats"])
        self.learner.load_state_dict(state["learner"])
        self.probe_nll = state.get("probe_nll", 0.0)
        if self.credit is not None:
            self.credit.load_state_dict(state["credit"])
