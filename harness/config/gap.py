"""The competence-gap knob and the reference-content control: what the teacher's reference is.

python -m harness.run gap.kind=horizon gap.level=2 reference=shuffled exposure=0.5 profile=smoke

`gap` makes the training references outrun the student (harness/tasks/gap.py): `horizon` draws
training chains longer than the base model was trained on (for `gap.share` of the problems: a
mixed-difficulty set), `leap` writes one reference step for several operations, `noisy` makes
level x 10% of the references wrong from a drawn step on (a reference set with errors).
The evaluation is unchanged (the student, no reference, the same
suites) and so is the base model: neither enters its key (harness/models/base_identity.py).
`reference` replaces what the teacher is shown (harness/tasks/references.py): the problem's own
reference, another training problem's (`shuffled`), the own one wrong from a drawn step on
(`corrupted`), or the final answer only (`answer_only`).
Both name the run: their labels join the run's tag (`effective_tag`), so a gap or control run
never shares a folder with the run it is compared against.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.fields import F, require

GAP_KINDS = ("none", "horizon", "leap", "noisy")
MAX_GAP_LEVEL = 5
REFERENCES = ("own", "shuffled", "corrupted", "answer_only")


@dataclass
class GapConfig:
    kind: str = F("none", f"how references outrun the student: {GAP_KINDS} (harness/tasks/gap.py)")
    level: int = F(0, f"gap level 0..{MAX_GAP_LEVEL} (0: no gap, today's task); horizon: training "
                      "chains `level` operations longer; leap: one reference step per level + 1 ops; "
                      "noisy: level x 10% of the references corrupted")
    share: float = F(1.0, "horizon only: the share of training problems drawn `level` operations longer "
                          "(the rest as the base model learned them): a mixed-difficulty set")

    def __post_init__(self) -> None:
        require(self.kind in GAP_KINDS, "gap.kind", self.kind, f"one of {GAP_KINDS}")
        require(0 <= self.level <= MAX_GAP_LEVEL, "gap.level", self.level, f"in [0, {MAX_GAP_LEVEL}]")
        require(self.kind != "none" or self.level == 0, "gap.level", self.level,
                "gap.kind=none has level 0 only (set gap.kind=horizon|leap|noisy)")
        require(0.0 < self.share <= 1.0, "gap.share", self.share, "in (0, 1]")
        require(self.share == 1.0 or self.kind == "horizon", "gap.share", self.share,
                "a share below 1 mixes difficulties: gap.kind=horizon only")

    @property
    def active(self) -> bool:
        return self.kind != "none" and self.level > 0

    @property
    def label(self) -> str:
        """The run-name part of the gap: `horizon2`, `horizon1mix50` (share 0.5); empty without a gap."""
        if not self.active:
            return ""
        mix = f"mix{round(self.share * 100)}" if self.share < 1.0 else ""
        return f"{self.kind}{self.level}{mix}"


def check_reference(reference: str) -> None:
    require(reference in REFERENCES, "reference", reference, f"one of {REFERENCES}")


def effective_tag(tag: str | None, gap: dict | GapConfig | None, reference: str | None,
                  empty_reference: str | None = None) -> str | None:
    """The tag a run is named with: the user's tag, the gap's label, `ref_<control>`, `r0_template`
    (task.empty_reference=template); None if none."""
    if isinstance(gap, dict):
        gap = GapConfig(**gap)
    parts = [tag or "", gap.label if gap else "",
             f"ref_{reference}" if reference and reference != "own" else "",
             "r0_template" if empty_reference == "template" else ""]
    return "_".join(p for p in parts if p) or None
