"""The base recipe meets its spec when rebuilt from scratch (slow: one SFT build, ~3-5 min).

python -m pytest -q -m slow tests/test_default_base.py      # or: make test-slow

On medium_k4 the student (no reference) must be imperfect, 15-70% Average@k, and the
teacher must get better with exposure and be >= 20 points above the student at r = 1.
The fast test of the same spec on the shipped model is in tests/test_shipped_base.py.
"""

from __future__ import annotations

import pytest

from harness.config.settings import compose
from harness.evaluate import evaluate
from harness.models.base import build
from harness.models.tiny import load

pytestmark = pytest.mark.slow


def medium_by_exposure(path, cfg) -> dict:
    model, tok = load(path)
    out = {}
    for r in (None, 0.5, 1.0):
        res, _ = evaluate(model, tok, cfg, suites=["medium_k4"], exposure=r)
        out[r] = res["suites"]["medium_k4"]["average"]
    return out


def assert_spec(medium: dict) -> None:
    assert 0.15 <= medium[None] <= 0.70, medium
    assert medium[None] < medium[0.5] < medium[1.0], medium
    assert medium[1.0] >= medium[None] + 0.20, medium


def test_rebuilt_default_base_meets_the_spec(tmp_path):
    cfg = compose(["eval.k=4", f"base.cache_dir={tmp_path}"])  # k = 4 keeps the check short
    assert_spec(medium_by_exposure(build(cfg), cfg))
