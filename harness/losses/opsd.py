"""loss=opsd: on-policy self-distillation, the student pulled toward the exposed teacher (loss.*).

python -m harness.run method=opsd exposure=0.5 profile=smoke

The divergence: harness/losses/divergences.py (block-wise: chunked.py); the trainer:
harness/trainers/opsd.py. Its knobs (loss.beta, loss.support, ...) are shared with the
teacher-side statistics of every loss, so they stay in the common `loss` section.
"""

from __future__ import annotations

from harness.registry import Component, register

register(Component(kind="loss", name="opsd", label="OPSD", rank=0, method_part="", trainer="opsd"))
