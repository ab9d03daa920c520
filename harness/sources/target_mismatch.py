"""source=target_mismatch: the exposure whose probed mismatch equals a target, in closed form.

python -m harness.run source=target_mismatch target_mismatch.kl=0.08 profile=smoke

At each hold window's start (step 1, then every target_mismatch.hold steps) the latest probe
curve (KL(S||T) at each probe.exposures r, measured on the step's own rollouts: the probe's
own settings) is fitted non-decreasing in r (pool-adjacent-violators: claim (a) says it
rises) and interpolated linearly; the r where the fit reaches the target is the exposure
until the next window. No learning: the exposure is a function of observables. The target
is one number, or a schedule from `kl` to `kl_end` over training. A target outside the
curve takes the nearest end; a flat curve keeps the r in force. Each decision is one
`kind: controller` row (tm_*: target, r, predicted and the realised mismatch of the window
before, and why) and one log line.

Default target 0.08: the mismatch the embedded default's base model shows at r = 0.5 in the
step-1 probe (results/README.md, claim (a): 0 / .025 / .080 / .114 / .345 at r = 0 .. 1). A
run starts at mid exposure and the same target moves it toward full exposure. Part of that drift
is the student closing the gap at every r (KL at r = 1 falls 0.137 -> 0.021 over training), part
is made by the source itself: training at r lowers the probed KL at and near r, so the lowest r
that reaches the target moves up each window (a ratchet toward r = 1); once the curve falls in r,
its non-decreasing fit is flat and r is frozen (the science audit, section 1a).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.config.fields import F, in_unit, require
from harness.registry import Component, register
from harness.sources.base import ExposureSource

FLAT = 1e-6  # a fitted curve rising less than this over its r range is flat


@dataclass
class TargetMismatchConfig:
    kl: float = F(0.08, "target KL(S||T) per token (the probe's mismatch_kl_st); default: the "
                        "embedded base's step-1 probe at r = 0.5")
    kl_end: float | None = F(None, "schedule: the target at the run's end, linear in t/T from kl "
                                   "(null: kl throughout)")
    hold: int = F(10, "steps a chosen r is held (a window); a multiple of probe.every, so each "
                      "window starts on a fresh probe curve (checked with the run's config)")
    r_init: float = F(0.5, "exposure before the first probe curve")

    def __post_init__(self) -> None:
        require(self.kl >= 0, "target_mismatch.kl", self.kl, ">= 0")
        require(self.kl_end is None or self.kl_end >= 0, "target_mismatch.kl_end", self.kl_end,
                ">= 0 or null")
        require(self.hold >= 1, "target_mismatch.hold", self.hold, ">= 1")
        in_unit("target_mismatch.r_init", self.r_init)


def check_probe(tm: TargetMismatchConfig, probe_every: int) -> None:
    """ConfigError unless the probe runs (probe.every > 0: without it the source would keep
    r_init forever) and every window starts on a fresh curve (probe.every divides hold)."""
    require(probe_every > 0, "probe.every", probe_every,
            "> 0 with source=target_mismatch (it inverts the probe curve)")
    require(tm.hold % probe_every == 0, "target_mismatch.hold", tm.hold,
            f"a multiple of probe.every={probe_every} (a window must start on a fresh probe curve)")


def isotonic(values: Sequence[float]) -> list[float]:
    """The non-decreasing sequence nearest `values` in least squares (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, w2), (m1, w1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return [m for m, w in blocks for _ in range(int(w))]


def clip(r: float) -> float:
    return min(max(r, 0.0), 1.0)


def invert(curve: Sequence[tuple[float, float]], target: float,
           current: float) -> tuple[float, float, str]:
    """(r, the fit's mismatch at r, why) for the r at which the monotone fit of curve
    [(r, KL)] reaches target: the lowest such r; an end when the target is outside the
    curve; `current` when the fit is flat. r is clipped to [0, 1]."""
    points = sorted(curve)
    rs, raw = [r for r, _ in points], [k for _, k in points]
    fit = isotonic(raw)
    shape = "" if all(abs(a - b) < 1e-12 for a, b in zip(fit, raw)) else "curve not monotone in r: " \
        "its non-decreasing fit; "
    if len(points) < 2 or fit[-1] - fit[0] < FLAT:
        return current, fit[0] if fit else float("nan"), shape + "curve flat: kept the r in force"
    if target <= fit[0]:
        return clip(rs[0]), fit[0], shape + f"target below the curve (min {fit[0]:.4g}): lowest r"
    # strictly above only: a target equal to a plateau at the top is reached at the plateau's
    # first r, which the search below finds (the lowest r, not the highest)
    if target > fit[-1]:
        return clip(rs[-1]), fit[-1], shape + f"target above the curve (max {fit[-1]:.4g}): highest r"
    for (r0, k0), (r1, k1) in zip(zip(rs, fit), zip(rs[1:], fit[1:])):
        if k1 >= target:  # the first segment that reaches it; k0 < target, as fit[0] < target
            r = r0 + (r1 - r0) * (target - k0) / (k1 - k0)
            return clip(r), target, shape + f"interpolated between r = {r0:g} and {r1:g}"
    raise AssertionError("a non-decreasing fit spans every target between its ends")


class TargetMismatchExposure(ExposureSource):
    needs_probe = True

    def __init__(self, total_steps: int, tm: TargetMismatchConfig) -> None:
        super().__init__(total_steps)
        self.tm, self.r = tm, tm.r_init
        self.curve: list[tuple[float, float]] = []
        self.window_kl: list[float] = []

    def current(self) -> float:
        return self.r

    def target(self, step: int) -> float:
        t = step / max(1, self.total_steps)
        end = self.tm.kl if self.tm.kl_end is None else self.tm.kl_end
        return self.tm.kl + (end - self.tm.kl) * t

    def observe_probe(self, step: int, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.curve = [(row["probe_exposure"], row["mismatch_kl_st"]) for row in rows]

    def step_end(self, step: int, stats: dict[str, Any]) -> list[dict[str, Any]]:
        super().step_end(step, stats)
        if stats.get("mismatch_kl_st") is not None:
            self.window_kl.append(float(stats["mismatch_kl_st"]))
        if not (step == 1 or step % self.tm.hold == 0) or not self.curve:
            return []
        target = self.target(step)
        r, predicted, why = invert(self.curve, target, self.r)
        realised = sum(self.window_kl) / len(self.window_kl) if self.window_kl else None
        print(f"target_mismatch step {step}: target {target:.4g}, r = {r:.4f} (predicted "
              f"{predicted:.4g}; {why})", flush=True)
        self.r, self.window_kl = r, []
        return [{"tm_target": target, "tm_r": r, "tm_predicted": predicted,
                 "tm_realised": realised, "tm_reason": why}]

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "r": self.r, "curve": self.curve, "window_kl": self.window_kl}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.r = state["step"], state["r"]
        self.curve = [tuple(x) for x in state["curve"]]
        self.window_kl = list(state["window_kl"])


register(Component(kind="source", name="target_mismatch", label="Target mismatch", rank=6,
                   config_key="target_mismatch", config=TargetMismatchConfig,
                   build=lambda cfg, evaluator=None: TargetMismatchExposure(cfg.train.steps,
                                                                             cfg.target_mismatch)))
