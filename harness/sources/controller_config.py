"""The ATESD controller's config (controller.*): its knobs, help text and range checks.

python -c "from harness.sources.controller_config import ControllerConfig; help(ControllerConfig)"

A module of its own so that the controller's parts (reinforce.py, paper_reward.py) and its
registration (atesd.py) import it without importing each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.config.fields import F, in_unit, require

PROGRESS_MEASURES = ("val_accuracy", "ref_nll", "train_loss")
CONTROLLER_STATES = ("stats", "none", "paper")
CONTROLLER_REWARDS = ("progress", "paper")  # harness/sources/controller.py, harness/sources/paper_reward.py
ADVANTAGES = ("baseline", "normalised")
ENTROPY_BOUNDS = ("clamp", "penalty")
RANDOM_DRAWS = ("uniform", "initial_beta")
# The policy's initial Beta(a, a) for every state: a = 1 + softplus(0) (harness/sources/reinforce.py
# BetaPolicy, last layer at zero); method=random controller.random_draw=initial_beta draws from it.
INITIAL_AB = 1.0 + math.log(2.0)


@dataclass
class ControllerConfig:
    """ATESD controller (harness/sources/controller.py); `hold` is also the window of method=random.

    Ablations are one override each, `ablation=<name>` (sweeps/ablation/*.yaml, which set
    these knobs and a run-name tag): paper_controller (credit_windows=3 gamma=0.9 advantage=baseline),
    immediate_reward (credit_windows=1 gamma=0 advantage=baseline),
    loss_reward (progress=train_loss, immediate), nll_progress (progress=ref_nll),
    no_hold (hold=1), bandit (state=none), paper_reward (the paper's reward, advantages,
    entropy bound and state); and the baselines random, linear_up,
    linear_down, step (method=schedule) and fixed_best (method=opsd). See README.md (ATESD section).
    """

    hold: int = F(5, "H: optimiser steps one sampled exposure is held (a window); 1: no hold")
    # Defaults W = 1, gamma = 0, advantage=normalised: what learns in 30 decisions on the policy
    # test bed (harness/policybed/README.md); the paper's reading (W = 3, gamma = 0.9, EMA
    # baseline) is ablation=paper_controller.
    credit_windows: int = F(1, "W: windows of progress credited to a decision, "
                               "R_k = sum_{j<W} gamma^j delta_(k+j); 1: immediate reward (default)")
    gamma: float = F(0.0, "discount of later windows in R_k, in [0, 1]; 0: immediate reward (default)")
    progress: str = F("val_accuracy", "learning-progress measure P at each window's end: "
                      "val_accuracy (student, no reference, task.val_size problems) | "
                      "ref_nll (minus the student's NLL of held-out reference solutions) | "
                      "train_loss (minus the window's mean distillation loss: the loss-change ablation)")
    progress_samples: int = F(4, "val_accuracy: samples per validation problem")
    progress_temperature: float = F(1.0, "val_accuracy: sampling temperature (0: greedy)")
    progress_seed: int = F(4321, "val_accuracy: sampling seed, the same every window (common random "
                                 "numbers: a delta compares the same draws)")
    progress_batch_size: int = F(64, "sequences per generate/forward call when measuring P")
    progress_max_new_tokens: int = F(64, "val_accuracy: new tokens per validation sample (its own "
                                         "budget: never eval.max_new_tokens' thinking budget)")
    state: str = F("stats", "policy input: stats (normalised training statistics) | "
                            "none (a constant: context-free bandit) | paper (stats + the student's "
                            "probe NLL of the validation references + its confidence on its rollouts)")
    state_ema: float = F(0.2, "EMA rate per step of the statistics in the state")
    hidden_size: int = F(32, "policy MLP width")
    lr: float = F(0.05, "Adam learning rate of the policy (choice: ~30 updates in a default run)")
    baseline_rate: float = F(0.2, "EMA rate of the reward baseline")
    entropy_bonus: float = F(0.0, "weight of the Beta entropy bonus in the policy loss")
    reward: str = F("progress", "what credits a decision: progress (R_k = sum_{j<W} gamma^j delta_(k+j)) | "
                                "paper (discounted positive drops of the distillation loss over the next "
                                "`lookahead` steps + lambda_gt * teacher log-prob of the reference; "
                                "harness/sources/paper_reward.py)")
    lookahead: int = F(4, "paper reward: L, optimiser steps after a decision's first step whose loss "
                          "drops credit it (4 = H - 1: the window's own steps, credited at its end)")
    lambda_gt: float = F(0.1, "paper reward: weight of the teacher's mean per-token log-prob of the "
                              "validation references at the chosen exposure; 0: not measured")
    advantage: str = F("normalised", "normalised ((R - mean) / std over the last advantage_buffer "
                                     "rewards, this one included; default) | baseline (R - EMA baseline)")
    advantage_buffer: int = F(32, "normalised advantage: rewards kept in the running buffer")
    max_entropy: float | None = F(None, "upper bound on the Beta's differential entropy (nats, <= 0; "
                                        "Beta(1, 1) has 0), see entropy_bound; null: no bound")
    entropy_bound: str = F("clamp", "how max_entropy binds: clamp (a flatter Beta has its concentration "
                                    "scaled up, mean kept, to H = max_entropy: a hard bound) | penalty "
                                    "(entropy_penalty * max(0, H - max_entropy) in the loss)")
    entropy_penalty: float = F(1.0, "entropy_bound=penalty: weight of the hinge")
    importance_clip: float | None = F(None, "null: today's update (log pi of the policy at update time, "
                                            "no ratio) | c >= 1: weight min(pi_now / pi_then, c), detached")

    shuffle_rewards: int = F(0, "learning control: 0 off | n >= 2: the rewards of each block of n "
                                "credited decisions are permuted among them before the policy learns "
                                "(harness/sources/reinforce.py RewardShuffler)")

    init_policy: str | None = F(None, "a controller trained across runs: a torch file whose policy "
                                      "weights start this run's policy (an earlier run's checkpoint "
                                      "exposure_source.pt, or a policy state_dict, e.g. from python -m "
                                      "harness.policybed --save-policy); null: the zero-initialised head")
    random_draw: str = F("uniform", "method=random: uniform (r ~ U[0, 1]) | initial_beta (r ~ the "
                                    "controller's initial Beta(1 + log 2, 1 + log 2): the learning "
                                    "control, ablation=initial_beta)")

    def __post_init__(self) -> None:
        require(self.hold >= 1, "controller.hold", self.hold, ">= 1")
        require(self.credit_windows >= 1, "controller.credit_windows", self.credit_windows, ">= 1")
        in_unit("controller.gamma", self.gamma)
        require(self.progress in PROGRESS_MEASURES, "controller.progress", self.progress,
                f"one of {PROGRESS_MEASURES}")
        require(self.progress_samples >= 1, "controller.progress_samples", self.progress_samples, ">= 1")
        require(self.progress_temperature >= 0, "controller.progress_temperature",
                self.progress_temperature, ">= 0")
        require(self.progress_batch_size >= 1, "controller.progress_batch_size",
                self.progress_batch_size, ">= 1")
        require(self.progress_max_new_tokens >= 1, "controller.progress_max_new_tokens",
                self.progress_max_new_tokens, ">= 1")
        require(self.state in CONTROLLER_STATES, "controller.state", self.state,
                f"one of {CONTROLLER_STATES}")
        require(0 < self.state_ema <= 1, "controller.state_ema", self.state_ema, "in (0, 1]")
        require(self.hidden_size >= 1, "controller.hidden_size", self.hidden_size, ">= 1")
        require(self.lr >= 0, "controller.lr", self.lr, ">= 0 (0: the frozen-policy control)")
        require(self.random_draw in RANDOM_DRAWS, "controller.random_draw", self.random_draw,
                f"one of {RANDOM_DRAWS}")
        require(self.shuffle_rewards == 0 or self.shuffle_rewards >= 2, "controller.shuffle_rewards",
                self.shuffle_rewards, "0 (off) or >= 2")
        require(0 < self.baseline_rate <= 1, "controller.baseline_rate", self.baseline_rate, "in (0, 1]")
        require(self.entropy_bonus >= 0, "controller.entropy_bonus", self.entropy_bonus, ">= 0")
        require(self.reward in CONTROLLER_REWARDS, "controller.reward", self.reward,
                f"one of {CONTROLLER_REWARDS}")
        require(self.lookahead >= 1, "controller.lookahead", self.lookahead, ">= 1")
        require(self.lambda_gt >= 0, "controller.lambda_gt", self.lambda_gt, ">= 0")
        require(self.advantage in ADVANTAGES, "controller.advantage", self.advantage, f"one of {ADVANTAGES}")
        require(self.advantage_buffer >= 2, "controller.advantage_buffer", self.advantage_buffer, ">= 2")
        require(self.max_entropy is None or self.max_entropy <= 0, "controller.max_entropy",
                self.max_entropy, "<= 0 (no Beta with a, b >= 1 has more) or null")
        require(self.entropy_bound in ENTROPY_BOUNDS, "controller.entropy_bound", self.entropy_bound,
                f"one of {ENTROPY_BOUNDS}")
        require(self.entropy_penalty >= 0, "controller.entropy_penalty", self.entropy_penalty, ">= 0")
        require(self.importance_clip is None or self.importance_clip >= 1, "controller.importance_clip",
                self.importance_clip, ">= 1 or null")
