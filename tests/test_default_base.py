"""The embedded default base model meets its spec (slow: builds it once, ~6-8 min on 2 cores).

python -m pytest -q -m slow tests/test_default_base.py      # or: make test-slow

On the medium suite the student (no reference) must be imperfect, 15-70% Average@k, and
the teacher must get better with exposure and be >= 20 points above the student at r = 1.
"""

from __future__ import annotations

import pytest

from harness.base import ensure_base
from harness.evaluate import evaluate
from harness.models import load
from harness.settings import compose

pytestmark = pytest.mark.slow


def test_default_base_student_imperfect_and_teacher_rises_with_exposure():
    cfg = compose(["eval.k=4"])  # k = 4 keeps the check short; the spec is on the mean
    model, tok = load(ensure_base(cfg))
    medium = {}
    for r in (None, 0.5, 1.0):
        res, _ = evaluate(model, tok, cfg, suites=["medium_k4"], exposure=r)
        medium[r] = res["suites"]["medium_k4"]["average"]
    assert 0.15 <= medium[None] <= 0.70, medium
    assert medium[None] < medium[0.5] < medium[1.0], medium
    assert medium[1.0] >= medium[None] + 0.20, medium
