"""The run's exposure source: the registered source of cfg.method.exposure_source, built once.

python -m pytest -q tests/test_formulas.py   # sources are exercised by the run tests

What a source is asked and told: harness/sources/base.py. Each source is one module of this
package that registers itself (harness/registry.py). In a run of several processes the
source is wrapped so that rank 0 decides for all (harness/sources/shared.py).
"""

from __future__ import annotations

from typing import Any

from harness.compute.distributed import world
from harness.registry import get
from harness.sources.base import ExposureSource


def make_source(cfg: Any, evaluator: Any = None) -> ExposureSource:
    """cfg's source; with several processes, rank 0's decides for every rank."""
    source = pick_source(cfg, evaluator)
    if world()[1] <= 1:  # one process: the source itself, nothing in between
        return source
    from harness.sources.shared import MainRankSource

    return MainRankSource(source)


def pick_source(cfg: Any, evaluator: Any = None) -> ExposureSource:
    component = get("source", cfg.method.exposure_source)
    assert component.build is not None, f"source {component.name} registered without build"
    return component.build(cfg, evaluator)
