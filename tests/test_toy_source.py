"""A source registered from inside this test runs end to end: no harness file knows it.

python -m pytest -q tests/test_toy_source.py

`alternating` gives each problem its own exposure (r or 1 - r by a hash of the problem id):
a per-problem source, so the run's train rows carry the batch's mean and spread and the
run writes one `kind: exposure` row per problem per step. Its Hydra group option is stored
from here too (what sweeps/source/<name>.yaml is for a shipped source).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from hydra.core.config_store import ConfigStore

from harness import registry
from harness.registry import Component
from harness.sources.base import ExposureSource


class AlternatingExposure(ExposureSource):
    per_problem = True

    def __init__(self, total_steps: int, r: float) -> None:
        super().__init__(total_steps)
        self.r = r

    def exposures(self, problem_ids: Sequence[str]) -> list[float]:
        return [self.r if zlib.crc32(pid.encode()) % 2 else 1.0 - self.r for pid in problem_ids]


@pytest.fixture
def alternating():
    registry.register(Component(kind="source", name="alternating", label="Alternating", rank=90,
                                method_part="alternating", fixed_exposure=True,
                                build=lambda cfg, ev: AlternatingExposure(cfg.train.steps, cfg.exposure)))
    ConfigStore.instance().store(group="source", name="alternating", package="_global_",
                                 node={"method": {"exposure_source": "alternating"}})
    yield
    registry.unregister("source", "alternating")


def rows(folder: Path, kind: str) -> list[dict]:
    return [r for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == kind]


def test_a_toy_per_problem_source_runs_end_to_end(alternating, smoke_base, tmp_path):
    from harness.config.settings import compose_resolved
    from harness.run import run
    from harness.runs.runinfo import read_run

    cfg, yaml_text = compose_resolved(["profile=smoke", "source=alternating", "exposure=0.25",
                                       f"results={tmp_path}", "train.steps=2", "probe.every=0"])
    assert cfg.run_name == "alternating-r0.25-s0"
    assert cfg.controller is None and "controller:" not in yaml_text  # only what the run uses
    run(cfg, yaml_text)
    folder = tmp_path / cfg.run_name
    train, per_problem = rows(folder, "train"), rows(folder, "exposure")
    assert [r["step"] for r in train] == [1, 2]
    assert len(per_problem) == 2 * cfg.train.prompts_per_step  # one per problem per step
    assert {r["exposure"] for r in per_problem} <= {0.25, 0.75}
    for row in train:
        mine = [r["exposure"] for r in per_problem if r["step"] == row["step"]]
        assert row["exposure"] == pytest.approx(sum(mine) / len(mine))
        mean = sum(mine) / len(mine)
        spread = (sum((x - mean) ** 2 for x in mine) / len(mine)) ** 0.5
        assert row["exposure_spread"] == pytest.approx(spread)
    assert any(r["exposure_spread"] > 0 for r in train)  # the batches mixed both exposures
    info = read_run(folder)
    assert info.state == "done" and info.label == "Alternating r = 0.25"


def test_an_unknown_source_is_refused_with_the_registered_ones(smoke_cfg):
    from harness.config.schema import ConfigError
    from harness.config.settings import compose

    with pytest.raises(ConfigError, match=r"method.exposure_source='nosuch' is invalid: one of "
                                          r"\('none', 'fixed', 'controller', 'random', 'schedule', "
                                          r"'target_mismatch', 'per_problem'\)"):
        compose(["profile=smoke", "method.exposure_source=nosuch"])
