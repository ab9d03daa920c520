"""The one record every task yields: a problem, its multi-step reference, its graded answer.

python -c "from harness.tasks.problem import Problem; print(Problem.__doc__)"
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

REQUIRED_FIELDS = ("id", "problem", "solution", "answer")


@dataclass(frozen=True)
class Problem:
    """One problem. `solution` is the reference the teacher is shown a prefix of.

    `steps` holds the reference split at reasoning-step boundaries (used by
    `exposure_unit=steps`); joining it with spaces gives `solution`.
    """

    id: str
    problem: str
    solution: str
    answer: str
    steps: tuple[str, ...] = ()
    # reference=answer_only (harness/tasks/references.py): the answer is shown whole at any r > 0,
    # as the paper's exposure 0 with the answer kept; a token cut of `ans <answer>` would not.
    whole_reference: bool = False

    def to_row(self) -> dict:
        row = asdict(self)
        row["steps"] = list(self.steps)
        return row

    @classmethod
    def from_row(cls, row: dict, where: str = "row") -> Problem:
        missing = [f for f in REQUIRED_FIELDS if f not in row or row[f] is None]
        if missing:
            raise ValueError(f"{where} lacks field(s) {', '.join(missing)}: {str(row)[:120]}")
        return cls(
            id=str(row["id"]),
            problem=str(row["problem"]),
            solution=str(row["solution"]),
            answer=str(row["answer"]),
            steps=tuple(row.get("steps") or ()),
            whole_reference=bool(row.get("whole_reference", False)),
        )
