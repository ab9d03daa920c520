"""What a student loss on top of GRPO adds to TRL's GRPO step: the interface RLTrainer calls.

python -m harness.run method=antisd exposure=0.5 profile=smoke    # harness/losses/antisd.py

A loss component (harness/registry.py, kind "loss") whose trainer is "rl" may give `build`,
called with the run config, returning one of these. RLTrainer (harness/trainers/rl.py) calls
`batch_start` once per optimiser step after the teacher's statistics of the rollouts are
known, `advantages` to replace GRPO's (AntiSD), `extra_loss` on each training micro-batch to
add a term (SDAR), and keeps `state_dict` in each checkpoint under `state_file`. Plain GRPO
(and a loss with no `build`) is this class as it is: nothing added. This module imports no
torch, so the registry can be read without it.
"""

from __future__ import annotations

from typing import Any


class GRPOSideLoss:
    state_file: str | None = None  # checkpoint file of the loss's own state (None: it has none)

    def __init__(self, cfg: Any = None) -> None:
        self.cfg = cfg

    def batch_start(self, trainer: Any) -> None:
        """A new step's rollouts (the trainer's step_loss_tokens and step_stats are set)."""

    def advantages(self, trainer: Any, out: dict[str, Any], stats_B_C_K: Any) -> Any:
        """Per-token advantages to train on instead of GRPO's out["advantages"], or None."""
        return None

    def extra_loss(self, trainer: Any, model: Any, inputs: dict[str, Any]) -> Any:
        """A term added to GRPO's loss on this micro-batch, or None."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict gave (a resumed run)."""
