"""The paper's ATESD reward (controller.reward=paper), normalised advantages, the entropy
bound, the importance ratio, state=paper, and the paper_reward ablation end to end.

python -m pytest -q tests/test_paper_reward.py
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness.config.schema import ConfigError
from harness.config.settings import compose, compose_resolved
from harness.run import run
from harness.runs.rundir import read_jsonl
from harness.runs.schema import CONTROLLER_ROW
from harness.sources.controller import FEATURES, PAPER_FEATURES, ControllerExposure
from harness.sources.controller_config import ControllerConfig
from harness.sources.learning_progress import ref_nll
from harness.sources.paper_reward import TeacherView, loss_drop_reward, teacher_ref_logp
from harness.sources.reinforce import Reinforce, clamp_entropy


def _cfg(steps: int, **cc):
    cfg = compose(["profile=smoke", "method=atesd"])
    return replace(cfg, train=replace(cfg.train, steps=steps), controller=replace(cfg.controller, **cc))


def _paper_controller(steps: int, teacher_logp, **cc) -> ControllerExposure:
    """reward=paper with P from the window's losses (no model) and G = teacher_logp(r)."""
    cfg = _cfg(steps, reward="paper", progress="train_loss", **cc)
    ctrl = ControllerExposure(cfg, (SimpleNamespace(validation=["unused"]), None))
    ctrl.measure_teacher_logp = teacher_logp  # type: ignore[method-assign]
    ctrl.bind(None, None)
    return ctrl


def _row(step: int, loss: float) -> dict:
    return {"step": step, "loss": loss, "mismatch_kl_st": 0.2, "rollout_accuracy": 0.5,
            "student_entropy": 1.0, "student_confidence": 0.7}


# ---- the reward's arithmetic -------------------------------------------------------------------
def test_loss_drop_reward_by_hand():
    # drops .2 (j=1), a rise (j=2: 0), .4 (j=3, weight gamma^2), none (j=4)
    assert loss_drop_reward([1.0, 0.8, 0.9, 0.5, 0.5], [0] * 5, 0.5) == pytest.approx(0.2 + 0.25 * 0.4)
    assert loss_drop_reward([1.0, 1.2, 1.5], [0] * 3, 0.9) == 0.0  # rises never cost
    # the drop between windows (exposure changed) is not counted; later ones keep their discount
    assert loss_drop_reward([1.0, 0.8, 0.5, 0.4], [0, 0, 1, 1], 0.5) == pytest.approx(0.2 + 0.25 * 0.1)
    assert loss_drop_reward([1.0, 0.8, 0.5], [0, 0, 0], 0.0) == pytest.approx(0.2)  # gamma 0: first drop
    assert loss_drop_reward([1.0], [0], 0.9) == 0.0


def test_paper_crediting_on_a_hand_made_loss_sequence():
    """H = 3, L = 4: decision k covers steps 3k+1 .. 3k+5 (crossing into window k+1) and is
    credited at the end of window k+1; R_k = D_k + lambda_gt * G(r_k)."""
    losses = [1.0, 0.7, 0.8, 0.5, 0.45, 0.6, 0.3, 0.35, 0.2, 0.1, 0.05, 0.0]  # steps 1..12
    gamma, lam = 0.5, 0.25
    ctrl = _paper_controller(12, lambda r: -2.0 * r, hold=3, lookahead=4, gamma=gamma, lambda_gt=lam)
    rs, rows = [], []
    for s in range(1, 13):
        rs.append(ctrl.current())
        rows += ctrl.step_end(s, _row(s, losses[s - 1]))
    assert [r["window"] for r in rows] == [0, 1, 2, 3]  # window ends at steps 3, 6, 9, 12
    assert "ctrl_reward" not in rows[0]
    for k, row in zip((0, 1, 2), rows[1:]):  # decision k credited at window k + 1's end
        first = 3 * k  # index of step 3k + 1
        look = losses[first:first + 5]
        want = sum(gamma ** (j - 1) * max(0.0, look[j - 1] - look[j])
                   for j in range(1, 5) if j != 3)  # j = 3: steps 3k+3 -> 3k+4 cross windows
        assert row["ctrl_credited"] == k
        assert row["ctrl_reward_drops"] == pytest.approx(want)
        assert row["ctrl_reward_gt"] == pytest.approx(lam * -2.0 * rs[first])
        assert row["ctrl_reward"] == pytest.approx(want + lam * -2.0 * rs[first])
        assert row["ctrl_teacher_logp"] == pytest.approx(-2.0 * rs[3 * (k + 1)])  # this window's r
    assert [d.window for d in ctrl.learner.pending] == [3]  # its lookahead outruns training
    assert min(ctrl.credit.losses) == 10 and set(ctrl.credit.teacher_logp) == {3}  # pruned


def test_lookahead_inside_the_window_credits_at_its_end_on_policy():
    """L = H - 1: each decision is credited at its own window's end, before the next draw,
    so the policy that is updated is the one that drew r (no drift)."""
    ctrl = _paper_controller(8, lambda r: 0.0, hold=2, lookahead=1, lambda_gt=0.0)
    losses = [0.9, 0.5, 0.6, 0.4, 0.4, 0.1, 0.3, 0.2]
    rows = [r for s in range(1, 9) for r in ctrl.step_end(s, _row(s, losses[s - 1]))]
    assert [r["ctrl_credited"] for r in rows] == [0, 1, 2, 3]
    assert [r["ctrl_reward"] for r in rows] == pytest.approx([0.4, 0.2, 0.3, 0.1])
    assert all(r["ctrl_logp_drift"] < 1e-6 for r in rows)
    assert "ctrl_teacher_logp" not in rows[0]  # lambda_gt = 0: G is not measured


def test_paper_state_round_trips_through_torch_save(tmp_path):
    losses = [1.0 / s for s in range(1, 21)]

    def make():
        return _paper_controller(20, lambda r: -r, hold=2, lookahead=3, state="paper",
                                 advantage="normalised", max_entropy=-0.2)

    a = make()
    a.measure_probe_nll = lambda p: 2.0 + a.step / 10  # type: ignore[method-assign]
    for s in range(1, 8):
        a.step_end(s, _row(s, losses[s - 1]))
    torch.save(a.state_dict(), tmp_path / "c.pt")
    b = make()
    b.measure_probe_nll = lambda p: 2.0 + b.step / 10  # type: ignore[method-assign]
    b.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=False))
    rows_a = [r for s in range(8, 21) for r in a.step_end(s, _row(s, losses[s - 1]))]
    rows_b = [r for s in range(8, 21) for r in b.step_end(s, _row(s, losses[s - 1]))]

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "ctrl_seconds"} for r in rows]

    assert strip(rows_a) == strip(rows_b) and any("ctrl_reward_drops" in r for r in rows_a)
    assert rows_a[0]["ctrl_state_probe_nll"] == pytest.approx(math.log1p(2.6))  # measured at step 6
    assert 0 < rows_a[0]["ctrl_state_confidence"] <= 0.7


# ---- advantages, entropy bound, importance ratio -------------------------------------------------
def test_normalised_advantages_by_hand():
    cc = ControllerConfig(advantage="normalised", advantage_buffer=3)
    learner = Reinforce(len(FEATURES), cc, seed=0)
    rewards, buffer = [0.5, 1.5, -1.0, 2.0, 2.0], []
    for k, R in enumerate(rewards):
        d = learner.decide(k, [0.1] * len(FEATURES))
        row = learner.learn([(learner.take_ready(lambda x: True)[0], R)])
        buffer = (buffer + [R])[-3:]  # the running buffer includes this reward
        mean, std = np.mean(buffer), np.std(buffer)
        want = 0.0 if std == 0 else (R - mean) / std
        assert row["ctrl_advantage"] == pytest.approx(want, abs=1e-6), k
        assert row["ctrl_baseline"] == pytest.approx(mean)
        assert d.window == k
        if k == 0:  # one reward alone has std 0: advantage 0, not an unbounded z-score
            assert row["ctrl_advantage"] == 0.0


def test_entropy_clamp_is_a_hard_bound_that_keeps_the_mean():
    torch.manual_seed(0)
    a_B, b_B = 1 + 3 * torch.rand(64), 1 + 3 * torch.rand(64)
    a_B[:3], b_B[:3] = torch.tensor([1.0, 1.0001, 1.2]), torch.tensor([1.0, 1.0001, 1.0])  # near uniform
    h_B = torch.distributions.Beta(a_B, b_B).entropy()
    ca_B, cb_B = clamp_entropy(a_B, b_B, -0.3)
    ch_B = torch.distributions.Beta(ca_B, cb_B).entropy()
    over_B = h_B > -0.3
    assert over_B.sum() > 5 and (~over_B).sum() > 5
    assert (ch_B[over_B] - -0.3).abs().max() < 1e-4  # brought to the bound, not past it
    assert torch.equal(ca_B[~over_B], a_B[~over_B]) and torch.equal(cb_B[~over_B], b_B[~over_B])
    torch.testing.assert_close(ca_B / (ca_B + cb_B), a_B / (a_B + b_B))  # the mean is kept
    assert (ca_B >= a_B).all() and (cb_B >= b_B).all()


@pytest.mark.parametrize("bound", ["clamp", "penalty"])
def test_entropy_bound_on_the_policy(bound):
    """Zero advantages (normalised, equal rewards): only the bound acts. Beta(1.69, 1.69)
    has H = -0.077: a bound of -0.05 never binds, one of -0.3 does."""
    state = [0.2] * len(FEATURES)

    def learner(max_entropy=None):
        cc = ControllerConfig(advantage="normalised", max_entropy=max_entropy, entropy_bound=bound)
        return Reinforce(len(FEATURES), cc, seed=0)

    loose = learner(-0.05)
    before = [p.detach().clone() for p in loose.policy.parameters()]
    for k in range(20):
        loose.learn([(loose.decide(k, state), 1.0)])
    assert all(torch.equal(a, b) for a, b in zip(before, loose.policy.parameters()))
    assert _entropy(loose, state) == pytest.approx(-0.077, abs=1e-3)

    tight = learner(-0.3)
    if bound == "clamp":  # at once, at every draw, and the raw policy is left alone
        d = tight.decide(0, state)
        assert torch.distributions.Beta(torch.tensor(d.a), torch.tensor(d.b)).entropy().item() == (
            pytest.approx(-0.3, abs=1e-4))
        assert d.a == pytest.approx(d.b)
    else:  # the hinge pulls over many updates, and Adam's momentum carries it past the bound
        for k in range(300):
            tight.learn([(tight.decide(k, state), 1.0)])
        assert _entropy(tight, state) < -0.3


def _entropy(learner: Reinforce, state: list[float]) -> float:
    with torch.no_grad():
        return learner.dist(torch.tensor([state])).entropy().item()


def test_importance_weight_and_drift_against_the_beta_density():
    cc = ControllerConfig(importance_clip=1.5)
    learner = Reinforce(len(FEATURES), cc, seed=0)
    state = [0.3] * len(FEATURES)
    ds = [learner.decide(k, state) for k in range(12)]
    then = torch.distributions.Beta(torch.tensor(1 + math.log(2)), torch.tensor(1 + math.log(2)))
    assert all(d.logp == pytest.approx(then.log_prob(torch.tensor(d.r)).item(), abs=1e-5) for d in ds)
    with torch.no_grad():  # the policy moves after the draws
        learner.policy.head.bias.copy_(torch.tensor([1.0, -0.5]))
    now = learner.policy.dist(torch.tensor([state] * 12))
    logp_now = now.log_prob(torch.tensor([d.r for d in ds]))
    credited = [(d, 0.1 * k) for k, d in enumerate(ds)]
    want_w = [min(math.exp(n - d.logp), 1.5) for n, d in zip(logp_now.tolist(), ds)]
    assert learner.importance_weights(credited, logp_now).tolist() == pytest.approx(want_w, rel=1e-5)
    assert max(want_w) == 1.5 and min(want_w) < 1  # the clip bites and ratios below 1 stay
    want_drift = np.mean([abs(n - d.logp) for n, d in zip(logp_now.tolist(), ds)])
    row = learner.learn(credited)
    assert row["ctrl_logp_drift"] == pytest.approx(want_drift, rel=1e-5)
    assert row["ctrl_is_weight"] == pytest.approx(np.mean(want_w), rel=1e-5)


# ---- config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("override", [
    "controller.reward=loss", "controller.lookahead=0", "controller.lambda_gt=-1",
    "controller.advantage=zscore", "controller.advantage_buffer=1", "controller.max_entropy=0.5",
    "controller.entropy_penalty=-1", "controller.importance_clip=0.5", "controller.state=full",
])
def test_bad_paper_keys_fail_naming_the_value(override):
    key, value = override.split("=")
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')}='?{value}"):
        compose(["profile=smoke", override])


# ---- the teacher term on real models -------------------------------------------------------------
def test_teacher_logp_at_r0_is_minus_the_student_nll_and_grows_with_exposure():
    """At r = 0 the teacher context is the student prompt (the r = 0 rule), so G = -NLL; on
    the shipped default base (a teacher that copies) G rises with r."""
    from harness.models.base import ensure_base
    from harness.models.tiny import load
    from harness.tasks.datasets import TaskData

    cfg = compose(["method=atesd"])  # teacher_ref_logp reads controller.*
    model, tok = load(ensure_base(cfg), cfg.model)
    problems = TaskData(cfg.task).validation[:16]
    teacher = TeacherView(model, nullcontext)
    model.train()
    g = [teacher_ref_logp(teacher, tok, cfg, problems, r) for r in (0.0, 0.5, 1.0)]
    assert model.training  # measured in eval mode, then restored
    assert g[0] == pytest.approx(-ref_nll(model, tok, cfg, problems), rel=1e-5)
    assert g[0] < g[1] < g[2] < 0, g


# ---- end to end -----------------------------------------------------------------------------------
def test_paper_reward_ablation_smoke_run(tmp_path, smoke_base):
    cfg, resolved = compose_resolved(["method=atesd", "ablation=paper_reward", "profile=smoke",
                                      f"results={tmp_path}", "train.steps=8"])
    assert (cfg.controller.reward, cfg.controller.advantage, cfg.controller.state) == (
        "paper", "normalised", "paper")
    run(cfg, resolved)
    folder = tmp_path / "atesd-paper_reward-s0"
    assert json.loads((folder / "status.json").read_text())["state"] == "done"
    rows = read_jsonl(folder / "metrics.jsonl")
    train = {r["step"]: r for r in rows if r["kind"] == "train"}
    ctrl = [r for r in rows if r["kind"] == "controller"]
    assert [c["step"] for c in ctrl] == [2, 4, 6, 8] and all(0 < t["student_confidence"] <= 1
                                                            for t in train.values())
    gamma = cfg.controller.gamma
    for c in ctrl:  # smoke: H = 2, L = 1, so decision k is credited at its own window's end
        assert set(c) <= set(CONTROLLER_ROW), set(c) - set(CONTROLLER_ROW)
        assert {f"ctrl_state_{n}" for n in PAPER_FEATURES} <= set(c)
        first = c["step"] - 1
        want = gamma ** 0 * max(0.0, train[first]["loss"] - train[first + 1]["loss"])
        assert c["ctrl_credited"] == c["window"]
        assert c["ctrl_reward_drops"] == pytest.approx(want, abs=1e-12)
        assert c["ctrl_reward_gt"] == pytest.approx(cfg.controller.lambda_gt * c["ctrl_teacher_logp"])
        assert c["ctrl_reward"] == pytest.approx(c["ctrl_reward_drops"] + c["ctrl_reward_gt"])
        assert c["ctrl_teacher_logp"] < 0 and c["ctrl_probe_nll"] == pytest.approx(-c["ctrl_progress"])
        assert abs(c["ctrl_advantage"]) <= math.sqrt(c["window"] + 1e-9) + 1e-6  # |z| <= sqrt(n - 1)
    assert ctrl[1]["ctrl_state_probe_nll"] == pytest.approx(math.log1p(ctrl[0]["ctrl_probe_nll"]))
