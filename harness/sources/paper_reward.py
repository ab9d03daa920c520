"""The paper's ATESD reward (controller.reward=paper): positive loss drops over a lookahead
plus lambda_gt times the teacher's log-probability of the reference.

python -m harness.run method=atesd ablation=paper_reward profile=smoke   # tests: tests/test_paper_reward.py

Source: harness/DESIGN.md, "Paper reward" (a secondary summary;
no ATESD code is public): "reward = discounted *positive* drops of the distillation loss
plus lambda_gt times the teacher's log-probability of the reference"; H, L, gamma and
lambda_gt are not given. Our reading, per decision k whose first step is s:
  l_0 .. l_L   the distillation loss of the train rows at steps s .. s + L (L = lookahead)
  D_k          = sum_{j=1..L} gamma^(j-1) max(0, l_(j-1) - l_j)  (per step, not window means)
               choice: a drop between two steps of different windows is not counted - the
               teacher's exposure changes there, and the loss level moves with r (harness/DESIGN.md:
               the mismatch rises with r), so such a drop measures the new r, not learning
  G_k          = mean per-token log p_teacher(reference solution | teacher context at r_k)
               over the task.val_size validation problems (choice: held-out, one batched
               teacher forward per window, measured at window k's end; with the frozen base
               teacher G depends on r_k alone, a fixed pull toward more exposure)
  R_k          = D_k + lambda_gt * G_k, credited at the first window end at or after step s + L;
               a decision whose lookahead outruns training is never credited (as for progress).
The loss l_j at step s + j is measured before step s + j's update, so D_k scores the
updates of steps s .. s + L - 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch

from harness.config.schema import RunConfig
from harness.losses.hidden_states import final_hidden, lm_head
from harness.prompts.templates import Prompts
from harness.sources.controller_config import ControllerConfig
from harness.sources.learning_progress import context_of, reference_logp
from harness.sources.reinforce import Decision
from harness.tasks.problem import Problem


def loss_drop_reward(losses_J: Sequence[float], windows_J: Sequence[int], gamma: float) -> float:
    """D = sum_{j>=1} gamma^(j-1) max(0, l_(j-1) - l_j), over consecutive steps of one window."""
    return float(sum(gamma ** (j - 1) * max(0.0, losses_J[j - 1] - losses_J[j])
                     for j in range(1, len(losses_J)) if windows_J[j - 1] == windows_J[j]))


# ---- the teacher term ----------------------------------------------------------------------------
@dataclass
class TeacherView:
    """The trainer's teacher as it runs it: its model under its context (base with LoRA:
    the adapters disabled; otherwise a no-op). Both trainers (OPSDTrainer, RLTrainer) name
    them `teacher_model` and `teacher_context`."""

    model: Any
    context: Callable[[], AbstractContextManager]

    @classmethod
    def of(cls, trainer: Any) -> TeacherView:
        return cls(trainer.teacher_model, trainer.teacher_context)

    def hidden(self, ids_B_T: torch.Tensor, attn_B_T: torch.Tensor, c_len: int) -> torch.Tensor:
        """h_B_C_H of the teacher at the positions predicting the last c_len tokens."""
        with self.context():
            return final_hidden(self.model, ids_B_T, attn_B_T, c_len)


@torch.no_grad()
def teacher_ref_logp(teacher: TeacherView, tokenizer, cfg: RunConfig, problems: list[Problem],
                     r: float) -> float:
    """G: mean per-token log-prob of the problems' reference solutions under the teacher
    context at exposure r (the trainer's teacher prompt ids, harness/prompts/templates.py)."""
    prompts = Prompts(cfg, tokenizer)
    prompt_ids = [prompts.teacher_ids(p, r)[0] for p in problems]
    was_training = teacher.model.training
    teacher.model.eval()
    dev = next(teacher.model.parameters()).device
    total, count = reference_logp(teacher.hidden, lm_head(teacher.model), dev, tokenizer, cfg, problems,
                                  prompt_ids, context_of(teacher.model))
    teacher.model.train(was_training)
    return total / max(count, 1)


# ---- crediting -------------------------------------------------------------------------------------
class LossDropCredit:
    """The per-step losses and per-window teacher terms a decision's reward needs, and the
    crediting of decisions whose lookahead has ended."""

    def __init__(self, cc: ControllerConfig) -> None:
        self.cc = cc
        self.losses: dict[int, tuple[int, float | None]] = {}  # step -> (window, loss)
        self.teacher_logp: dict[int, float] = {}  # window -> G of its exposure

    def record(self, step: int, window: int, loss: float | None) -> None:
        self.losses[step] = (window, loss)

    def first_step(self, window: int) -> int | None:
        steps = [s for s, (w, _) in self.losses.items() if w == window]
        return min(steps) if steps else None

    def is_ready(self, d: Decision, step: int) -> bool:
        first = self.first_step(d.window)
        return first is not None and first + self.cc.lookahead <= step

    def reward(self, d: Decision) -> dict[str, float] | None:
        """{reward, drops, gt} of a ready decision; None when a loss of its lookahead is missing."""
        first = self.first_step(d.window)
        assert first is not None
        rows = [self.losses.get(s) for s in range(first, first + self.cc.lookahead + 1)]
        if any(row is None or row[1] is None for row in rows):
            return None
        drops = loss_drop_reward([row[1] for row in rows], [row[0] for row in rows], self.cc.gamma)
        gt = self.cc.lambda_gt * self.teacher_logp.get(d.window, 0.0)
        return {"reward": drops + gt, "drops": drops, "gt": gt}

    def credit(self, ready: list[Decision]) -> tuple[list[tuple[Decision, float]], dict[str, Any]]:
        """(decision, R) pairs to learn from, and the row keys of the last one's terms."""
        credited, terms = [], {}
        for d in ready:
            parts = self.reward(d)
            if parts is not None:
                credited.append((d, parts["reward"]))
                terms = {"ctrl_reward_drops": parts["drops"], "ctrl_reward_gt": parts["gt"]}
        return credited, terms

    def prune(self, pending: list[Decision]) -> None:
        """Forget what no pending decision can still need (windows before the oldest one)."""
        oldest = min((d.window for d in pending), default=None)
        self.losses = {s: v for s, v in self.losses.items() if oldest is not None and v[0] >= oldest}
        self.teacher_logp = {w: g for w, g in self.teacher_logp.items() if oldest is not None and w >= oldest}

    def state_dict(self) -> dict[str, Any]:
        return {"losses": dict(self.losses), "teacher_logp": dict(self.teacher_logp)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses = {int(s): tuple(v) for s, v in state["losses"].items()}
        self.teacher_logp = {int(w): g for w, g in state["teacher_logp"].items()}
