"""The exposure cut: the first ceil(r * L) tokens (or steps) of the reference, r in [0, 1].

python -c "from harness.prompts.cut import cut_tokens; print(cut_tokens(list(range(10)), 0.25))"

Pure arithmetic on sequences (no tokenizer, no config import, so harness/config/schema.py may
use `check_exposure` too). Turning a cut into prompt text is harness/prompts/templates.py's job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

UNITS = ("tokens", "steps")


def check_exposure(r: float, what: str = "exposure") -> float:
    """r as a float, or ValueError naming `what` and the bad value when r is not in [0, 1]."""
    if not isinstance(r, int | float) or math.isnan(r) or not 0.0 <= r <= 1.0:
        raise ValueError(f"{what}={r!r} is invalid: must be in [0, 1]")
    return float(r)


def prefix_length(r: float, length: int) -> int:
    """ceil(r * length), robust to float noise (0.1 * 30 must give 3, not 4)."""
    check_exposure(r)
    return min(length, math.ceil(round(r * length, 9)))


def cut_tokens(ref_ids: Sequence[int], r: float) -> list[int]:
    return list(ref_ids[: prefix_length(r, len(ref_ids))])


def cut_steps(steps: Sequence[str], r: float) -> list[str]:
    return list(steps[: prefix_length(r, len(steps))])
