"""ATESD controller: Beta policy, delayed discounted reward, hold windows, REINFORCE, checkpoints,
config errors (the runs: tests/test_controller_runs.py).

python -m pytest -q tests/test_controller.py
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats as scistats

from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.sources.controller import FEATURES, ControllerExposure
from harness.sources.controller_config import ControllerConfig
from harness.sources.random import RandomExposure
from harness.sources.reinforce import (
    BetaPolicy,
    Reinforce,
    RewardShuffler,
    discounted_reward,
    reward_snr,
    sample_beta,
)


# ---- helpers ------------------------------------------------------------------------------------
def _controller(tmp_cfg, progress_values: list[float], **cc) -> ControllerExposure:
    """A controller whose P is read from `progress_values` (first value: P before training)."""
    cfg = replace(tmp_cfg, controller=replace(tmp_cfg.controller, **cc))
    data = SimpleNamespace(validation=["unused"])
    ctrl = ControllerExposure(cfg, (data, None))
    values = iter(progress_values)
    ctrl.measure = lambda: next(values)  # type: ignore[method-assign]
    ctrl.bind(None, None)
    return ctrl


def _row(step: int) -> dict:
    return {"step": step, "loss": 0.1, "mismatch_kl_st": 0.2, "rollout_accuracy": 0.5,
            "student_entropy": 1.0}


def _cfg(steps: int = 12):
    cfg = compose(["profile=smoke", "method=atesd"])
    return replace(cfg, train=replace(cfg.train, steps=steps))


# ---- the Beta policy ----------------------------------------------------------------------------
def test_policy_log_prob_matches_beta_density():
    torch.manual_seed(0)
    policy = BetaPolicy(len(FEATURES), 16)
    for p in policy.parameters():  # a policy far from its zero start, to test the general case
        torch.nn.init.normal_(p, std=2.0)
    state_B_S = torch.randn(64, len(FEATURES)) * 3
    a_B, b_B = policy(state_B_S)
    assert (a_B >= 1).all() and (b_B >= 1).all()
    r_B = torch.rand(64).clamp(1e-3, 1 - 1e-3)
    want_B = (torch.lgamma(a_B + b_B) - torch.lgamma(a_B) - torch.lgamma(b_B)
              + (a_B - 1) * torch.log(r_B) + (b_B - 1) * torch.log1p(-r_B))
    dist = policy.dist(state_B_S)
    assert isinstance(dist, torch.distributions.Beta)
    torch.testing.assert_close(dist.log_prob(r_B), want_B, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(dist.log_prob(r_B), torch.distributions.Beta(a_B, b_B).log_prob(r_B))
    dist.log_prob(r_B).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())


def test_policy_starts_broad_and_symmetric():
    a_B, b_B = BetaPolicy(len(FEATURES), 8)(torch.randn(5, len(FEATURES)))
    torch.testing.assert_close(a_B, torch.full((5,), 1 + math.log(2)))
    torch.testing.assert_close(b_B, a_B)


@pytest.mark.parametrize("a,b", [(1.0, 1.0), (1.7, 1.7), (5.0, 1.5), (1.2, 8.0)])
def test_sampling_matches_torch_beta(a, b):
    rng = np.random.default_rng(0)
    ours = np.array([sample_beta(rng, a, b) for _ in range(4000)])
    assert ((ours > 0) & (ours < 1)).all()
    torch.manual_seed(0)
    ref = torch.distributions.Beta(torch.tensor(a), torch.tensor(b)).sample((4000,)).numpy()
    assert scistats.ks_2samp(ours, ref).pvalue > 0.01
    mean = torch.distributions.Beta(torch.tensor(a), torch.tensor(b)).mean.item()
    assert abs(ours.mean() - mean) < 0.02


# ---- reward and crediting -----------------------------------------------------------------------
def test_discounted_reward_by_hand():
    assert discounted_reward([0.1, 0.2, -0.4], 0.5) == pytest.approx(0.1 + 0.5 * 0.2 - 0.25 * 0.4)
    assert discounted_reward([0.3], 0.0) == pytest.approx(0.3)
    assert discounted_reward([0.3, 1.0], 0.0) == pytest.approx(0.3)  # gamma = 0: immediate


def test_delayed_crediting_on_a_hand_made_progress_sequence():
    P = [0.0, 0.1, 0.3, 0.2, 0.5, 0.6]  # P_(-1), P_0 .. P_4
    delta = [P[i + 1] - P[i] for i in range(5)]
    ctrl = _controller(_cfg(5), P, hold=1, credit_windows=3, gamma=0.5, advantage="baseline")
    rows = [r for s in range(1, 6) for r in ctrl.step_end(s, _row(s))]
    assert [r["window"] for r in rows] == [0, 1, 2, 3, 4]
    for r, d, p in zip(rows, delta, P[1:]):
        assert r["ctrl_delta"] == pytest.approx(d) and r["ctrl_progress"] == p
    # windows 0 and 1 credit nothing; window k >= 2 credits decision k - 2 with 3 deltas
    assert "ctrl_reward" not in rows[0] and "ctrl_reward" not in rows[1]
    for k in (2, 3, 4):
        want = delta[k - 2] + 0.5 * delta[k - 1] + 0.25 * delta[k]
        assert rows[k]["ctrl_credited"] == k - 2
        assert rows[k]["ctrl_reward"] == pytest.approx(want)
    # the baseline starts at the first reward, then moves by baseline_rate toward each reward
    r0, r1 = rows[2]["ctrl_reward"], rows[3]["ctrl_reward"]
    assert rows[2]["ctrl_baseline"] == pytest.approx(r0)
    assert rows[3]["ctrl_baseline"] == pytest.approx(r0 + 0.2 * (r1 - r0))
    # decisions 3 and 4 would need windows past the end of training: never credited
    assert [d.window for d in ctrl.learner.pending] == [3, 4]


def test_immediate_reward_is_the_next_delta():
    P = [0.0, 0.25, 0.125]
    ctrl = _controller(_cfg(2), P, hold=1, credit_windows=1, gamma=0.0)
    rows = [r for s in (1, 2) for r in ctrl.step_end(s, _row(s))]
    assert [r["ctrl_reward"] for r in rows] == [pytest.approx(0.25), pytest.approx(-0.125)]


def test_train_loss_progress_drops_the_first_decision():
    cfg = _cfg(4)
    cfg = replace(cfg, controller=replace(cfg.controller, progress="train_loss", hold=1,
                                          credit_windows=1, gamma=0.0))
    ctrl = ControllerExposure(cfg, None)
    ctrl.bind(None, None)
    rows = [r for s in (1, 2, 3) for r in ctrl.step_end(s, {**_row(s), "loss": 1.0 / s})]
    assert rows[0]["ctrl_delta"] is None and "ctrl_reward" not in rows[0]
    assert rows[1]["ctrl_progress"] == pytest.approx(-0.5)
    assert rows[1]["ctrl_reward"] == pytest.approx(1.0 - 0.5)  # the loss fell from 1 to 1/2


# ---- hold windows -------------------------------------------------------------------------------
def test_exposure_is_held_for_a_window_and_resampled_at_its_end():
    ctrl = _controller(_cfg(10), [0.1 * i for i in range(20)], hold=3, credit_windows=1)
    in_force, row_steps = [], []
    for s in range(1, 11):
        in_force.append(ctrl.current())  # what step s's teacher sees
        if ctrl.step_end(s, _row(s)):
            row_steps.append(s)
    assert row_steps == [3, 6, 9, 10]  # the last, partial window ends with training
    windows = [in_force[0:3], in_force[3:6], in_force[6:9], in_force[9:10]]
    assert all(len(set(w)) == 1 for w in windows)
    firsts = [w[0] for w in windows]
    assert len(set(firsts)) == 4  # re-sampled at each window's end


def test_bandit_state_is_constant():
    ctrl = _controller(_cfg(6), [0.0] * 10, hold=2, state="none")
    rows = [r for s in range(1, 7) for r in ctrl.step_end(s, _row(s))]
    assert all(r[f"ctrl_state_{n}"] == 0.0 for r in rows for n in FEATURES)
    ctrl2 = _controller(_cfg(6), [0.0] * 10, hold=2)
    rows2 = [r for s in range(1, 7) for r in ctrl2.step_end(s, _row(s))]
    assert rows2[1]["ctrl_state_progress"] == pytest.approx(2 / 6)
    assert rows2[1]["ctrl_state_prev_exposure"] == pytest.approx(rows2[0]["ctrl_r"])


# ---- REINFORCE on a bandit with a known best exposure ---------------------------------------------
@pytest.mark.parametrize("best", [0.8, 0.2])
def test_reinforce_moves_the_policy_toward_the_rewarded_exposure(best):
    cc = ControllerConfig(hold=1, credit_windows=1, gamma=0.0, lr=0.05)
    learner = Reinforce(len(FEATURES), cc, seed=0)
    state = [0.3] * len(FEATURES)

    def expected_reward() -> float:
        with torch.no_grad():
            r_N = learner.policy.dist(torch.tensor([state])).sample((2000,)).flatten()
        return -((r_N - best) ** 2).mean().item()

    torch.manual_seed(0)
    before = expected_reward()
    for k in range(150):
        d = learner.decide(k, state)
        learner.end_window(k, -((d.r - best) ** 2))
    with torch.no_grad():
        a_B, b_B = learner.policy(torch.tensor([state]))
    mean = (a_B / (a_B + b_B)).item()
    assert abs(mean - best) < 0.15, mean
    assert expected_reward() > before + 0.02


# ---- checkpoint round trip ------------------------------------------------------------------------
def test_state_round_trips_through_torch_save(tmp_path):
    P = [0.05 * i for i in range(40)]
    a = _controller(_cfg(20), P, hold=2, credit_windows=2)
    for s in range(1, 8):
        a.step_end(s, _row(s))
    torch.save(a.state_dict(), tmp_path / "c.pt")
    b = _controller(_cfg(20), P, hold=2, credit_windows=2)  # fresh, then restored
    b.load_state_dict(torch.load(tmp_path / "c.pt", weights_only=False))
    b.measure = lambda: next(rest_b)  # type: ignore[method-assign]
    a.measure = lambda: next(rest_a)  # type: ignore[method-assign]
    rest_a, rest_b = iter(P[5:]), iter(P[5:])
    assert b.current() == a.current()
    rows_a = [r for s in range(8, 21) for r in a.step_end(s, _row(s))]
    rows_b = [r for s in range(8, 21) for r in b.step_end(s, _row(s))]
    strip = [{k: v for k, v in r.items() if k != "ctrl_seconds"} for r in rows_a]
    assert strip == [{k: v for k, v in r.items() if k != "ctrl_seconds"} for r in rows_b]
    assert any("ctrl_policy_loss" in r for r in rows_a)
    for pa, pb in zip(a.learner.policy.parameters(), b.learner.policy.parameters()):
        assert torch.equal(pa, pb)


# ---- the defaults and the diagnostics ------------------------------------------------------------------
def test_default_controller_is_the_one_the_bed_chose():
    cc = ControllerConfig()
    assert (cc.credit_windows, cc.gamma, cc.advantage) == (1, 0.0, "normalised")
    old = compose(["ablation=paper_controller"]).controller  # the paper's reading, one override
    assert (old.credit_windows, old.gamma, old.advantage) == (3, 0.9, "baseline")
    assert compose(["ablation=paper_reward"]).controller.gamma == 0.9  # its lookahead's discount kept


def test_rows_carry_the_policy_mean_concentration_reward_advantage_and_snr():
    P = [0.0, 0.1, 0.15, 0.3, 0.2, 0.5, 0.4, 0.45, 0.7]
    ctrl = _controller(_cfg(8), P, hold=1, credit_windows=1)  # the default W (smoke's is 2)
    rows = [r for s in range(1, 9) for r in ctrl.step_end(s, _row(s))]
    for r in rows:
        assert r["ctrl_policy_mean"] == pytest.approx(r["ctrl_a"] / (r["ctrl_a"] + r["ctrl_b"]))
        assert r["ctrl_concentration"] == pytest.approx(r["ctrl_a"] + r["ctrl_b"])
    assert [r["ctrl_reward"] for r in rows] == pytest.approx([b - a for a, b in zip(P, P[1:])])
    # normalised advantage at window 1 by hand: rewards 0.1, 0.05: mean 0.075, sd 0.025 -> -1
    assert rows[1]["ctrl_advantage"] == pytest.approx(-1.0)
    assert [r["ctrl_reward_snr"] is None for r in rows] == [True] * 5 + [False] * 3
    hist = [(r["window"], r["ctrl_r"], r["ctrl_reward"]) for r in rows]
    assert rows[-1]["ctrl_reward_snr"] == pytest.approx(reward_snr(hist))


def test_reward_snr_by_hand():
    r = [0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8]
    assert reward_snr([(k, r[k], 0.0) for k in range(5)]) is None  # fewer than 6 decisions
    # rewards that are exactly a trend in k: nothing for r to explain, no noise
    assert reward_snr([(k, r[k], 0.3 - 0.02 * k) for k in range(7)]) == 0.0
    # R = r + e with residual e orthogonal to (1, k, r, r^2): the fit returns r exactly, and
    # SNR = sd(r) / sqrt(sum e^2 / (7 - 4)), e found by projecting a vector off the design
    X = np.column_stack([np.ones(7), np.arange(7), r, np.square(r)])
    v = np.array([1.0, -1.0, 0.5, 0.0, -0.5, 1.0, -1.0])
    e = v - X @ np.linalg.lstsq(X, v, rcond=None)[0]
    e *= 0.1 / np.abs(e).max()
    want = np.std(r) / math.sqrt((e ** 2).sum() / 3)
    assert reward_snr([(k, r[k], r[k] + e[k]) for k in range(7)]) == pytest.approx(want)


# ---- learning controls -------------------------------------------------------------------------------------
def test_lr_zero_leaves_the_policy_bit_equal():
    P = [0.0, 0.3, 0.1, 0.4, 0.2, 0.6, 0.1, 0.5, 0.2, 0.7, 0.3]
    ctrl = _controller(_cfg(10), P, hold=1, credit_windows=1, lr=0.0)
    before = [p.detach().clone() for p in ctrl.learner.policy.parameters()]
    rows = [r for s in range(1, 11) for r in ctrl.step_end(s, _row(s))]
    assert sum("ctrl_policy_loss" in r for r in rows) == 10  # it was credited and computed
    assert any(r["ctrl_advantage"] != 0 for r in rows)
    for b, p in zip(before, ctrl.learner.policy.parameters()):
        assert torch.equal(b, p)
    a = 1 + math.log(2)  # so every decision is the initial Beta
    assert all(r["ctrl_a"] == pytest.approx(a) and r["ctrl_b"] == pytest.approx(a) for r in rows)
    assert compose(["ablation=frozen_policy"]).controller.lr == 0.0


def test_shuffled_rewards_are_a_permutation_of_the_real_ones():
    P = [0.0, 0.3, 0.1, 0.4, 0.2, 0.6, 0.1, 0.5, 0.2, 0.7, 0.3, 0.9, 0.4]  # 12 windows
    ctrl = _controller(_cfg(12), P, hold=1, credit_windows=1, shuffle_rewards=5)
    used: list[tuple[int, float]] = []
    update = ctrl.learner.update

    def spy(credited):
        used.extend((d.window, R) for d, R in credited)
        return update(credited)

    ctrl.learner.update = spy  # type: ignore[method-assign]
    rows = [r for s in range(1, 13) for r in ctrl.step_end(s, _row(s))]
    real = [r["ctrl_reward"] for r in rows]
    assert real == pytest.approx([b - a for a, b in zip(P, P[1:])])
    # blocks of 5: updates at windows 4 and 9, the last partial block (10, 11) at training's end
    assert [i for i, r in enumerate(rows) if "ctrl_policy_loss" in r] == [4, 9, 11]
    assert sorted(w for w, _ in used) == list(range(12))  # every decision learned from once
    assert sorted(R for _, R in used) == pytest.approx(sorted(real))  # the same rewards ...
    for block in (range(0, 5), range(5, 10), range(10, 12)):  # ... permuted within each block
        assert sorted(R for w, R in used if w in block) == pytest.approx(sorted(real[w] for w in block))
    assert any(R != pytest.approx(real[w]) for w, R in used)  # not the identity
    assert compose(["ablation=shuffled_rewards"]).controller.shuffle_rewards == 5


@pytest.mark.parametrize("form", ["run_checkpoint", "learner", "policy"])
def test_init_policy_starts_from_the_saved_weights(tmp_path, form):
    """controller.init_policy: a controller trained across runs starts from an earlier policy."""
    trained = Reinforce(len(FEATURES), ControllerConfig(), seed=1)
    for p in trained.policy.parameters():
        torch.nn.init.normal_(p)
    saved = {"run_checkpoint": {"learner": trained.state_dict()}, "learner": trained.state_dict(),
             "policy": trained.policy.state_dict()}[form]
    torch.save(saved, tmp_path / "p.pt")
    fresh = Reinforce(len(FEATURES), ControllerConfig(init_policy=str(tmp_path / "p.pt")), seed=0)
    for a, b in zip(trained.policy.parameters(), fresh.policy.parameters()):
        assert torch.equal(a, b)
    own = Reinforce(len(FEATURES), ControllerConfig(), 0).policy  # without it: the seed's own init
    assert all(not torch.equal(a, b) for a, b in zip(trained.policy.parameters(), own.parameters()))


def test_reward_shuffler_state_round_trips():
    a, b = RewardShuffler(3, seed=7), RewardShuffler(3, seed=7)
    from harness.sources.reinforce import Decision

    ds = [(Decision(k, [0.0], 0.5, 1.7, 1.7), float(k)) for k in range(6)]
    a.take(ds[:2], final=False)
    b.load_state_dict(a.state_dict())
    assert a.take(ds[2:3], final=False) == b.take(ds[2:3], final=False)


def test_random_from_the_initial_beta():
    src = RandomExposure(total_steps=4000, hold=1, seed=3, draw="initial_beta")
    a = 1 + math.log(2)
    import random as pyrandom

    assert src.current() == pyrandom.Random(3).betavariate(a, a)  # the first draw, by hand
    rs = [src.current()]
    for step in range(1, 4000):
        src.step_end(step, {})
        rs.append(src.current())
    assert scistats.kstest(rs, scistats.beta(a, a).cdf).pvalue > 0.01
    assert scistats.kstest(rs, "uniform").pvalue < 1e-6  # not U[0, 1]
    assert RandomExposure(10, 1, 3).current() == pyrandom.Random(3).random()  # uniform unchanged
    cfg = compose(["ablation=initial_beta"])
    assert cfg.method.exposure_source == "random" and cfg.controller.random_draw == "initial_beta"


# ---- config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("override,match", [
    ("controller.hold=0", "controller.hold=0"),
    ("controller.gamma=1.5", "controller.gamma=1.5"),
    ("controller.credit_windows=0", "controller.credit_windows=0"),
    ("controller.progress=loss", "controller.progress='loss'"),
    ("controller.state=full", "controller.state='full'"),
    ("controller.lr=-0.1", "controller.lr=-0.1"),
    ("controller.shuffle_rewards=1", "controller.shuffle_rewards=1"),
    ("controller.random_draw=gauss", "controller.random_draw='gauss'"),
    ("schedule.kind=cosine", "schedule.kind='cosine'"),
    ("tag=a/b", "tag='a/b'"),
])
def test_bad_controller_config_fails_naming_the_value(override, match):
    with pytest.raises(ConfigError, match=match.replace(".", r"\.").replace("(", r"\(")):
        compose(["profile=smoke", override])
