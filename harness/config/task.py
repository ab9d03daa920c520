"""The task's config: the synthetic task's knobs, math datasets, eval suites, prompt templates.

python -c "from harness.config.task import TaskConfig; help(TaskConfig)"
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config.fields import ConfigError, F, require
from harness.registry import names as registered

EMPTY_REFERENCES = ("student", "template")  # task.empty_reference: the teacher's context at r = 0


@dataclass
class SuiteConfig:
    name: str = F("medium_k4", "suite name, used in tables (what it is: difficulty in the name)")
    num_ops: int = F(4, "operations per problem (the difficulty knob)")
    size: int = F(100, "problems in the suite")

    def __post_init__(self) -> None:
        require(1 <= self.num_ops <= 12, f"suite {self.name} num_ops", self.num_ops, "in [1, 12]")
        require(self.size >= 1, f"suite {self.name} size", self.size, ">= 1")


@dataclass
class DataSource:
    """A math dataset: a hub id or a local .json/.jsonl/.parquet file, with its field names
    (harness/tasks/math_data.py). Null solution/answer fields: none (eval) / the last
    \\boxed{} of the solution (training)."""

    name: str = F("train", "suite name in tables (aime24, ...), or `train`")
    path: str = F("", "hub dataset id (e.g. HuggingFaceH4/aime_2024) or a local data file")
    split: str = F("train", "hub split")
    problem: str = F("problem", "field holding the problem text")
    solution: str | None = F("solution", "field holding the reference solution (null: none)")
    answer: str | None = F("answer", "field holding the final answer (null: last \\boxed{} of "
                                     "the solution)")
    id: str | None = F(None, "field holding a stable problem id (null: <name>-<row index>)")
    limit: int = F(0, "use the first N rows only (0: all)")

    def __post_init__(self) -> None:
        from harness.tasks.math_data import check_source  # lazy: tasks import this module

        require(self.limit >= 0, f"data {self.name} limit", self.limit, ">= 0")
        problem = check_source(self)
        if problem:
            raise ConfigError(problem)


@dataclass
class TaskConfig:
    kind: str = F("synthetic", "synthetic (embedded) or math (task.train_data, task.eval_data)")
    modulus: int = F(13, "synthetic: arithmetic modulo this (<= 100)")
    train_ops: list[int] = F([2, 5], "synthetic: [min, max] operations of training problems")
    seed: int = F(0, "seed of the eval suites (fixed across runs so tables compare)")
    val_size: int = F(64, "held-out validation problems (controller progress), disjoint from all")
    grader: str = F("synthetic", "synthetic (exact answer) or math (\\boxed + math-verify)")
    student_template: str = F("{problem} ?", "student prompt; {problem}")
    # Reference before the problem: this order taught the tiny model to copy
    # (harness/DESIGN.md, Prototype findings).
    teacher_template: str = F("ref : {reference} | {problem} ?", "teacher prompt; {problem} {reference}")
    # The three held-out suites stand in for AIME24 / AIME25 / HMMT25 (rising difficulty).
    suites: list[SuiteConfig] = field(
        default_factory=lambda: [SuiteConfig("easy_k3", 3, 100), SuiteConfig("medium_k4", 4, 100),
                                 SuiteConfig("hard_k5", 5, 100)],
        metadata={"help": "held-out eval suites, rising difficulty"})
    # Math task (sweeps/task/math.yaml); the defaults leave the synthetic task as it was.
    train_data: DataSource | None = F(None, "math: training problems + reference solutions")
    eval_data: list[DataSource] = F([], "math: evaluation suites (AIME24, AIME25, HMMT25)")
    chat_template: bool = F(False, "render prompts with the tokenizer's chat template")
    student_thinking: bool = F(False, "chat template enable_thinking for the student's prompt")
    teacher_thinking: bool = F(False, "chat template enable_thinking for the teacher's prompt")
    keep_answer: bool = F(False, "the teacher always sees `transition` + the boxed final "
                                 "answer after the cut reference (the paper's exposure)")
    transition: str = F("Skipping the remaining steps, the final answer is",
                        "keep_answer: the fixed sentence between the cut and the answer")
    max_teacher_tokens: int = F(0, "teacher prompt budget in tokens: a longer reference is cut "
                                   "from its end (never the problem; 0: no limit)")
    empty_reference: str = F("student", "r = 0 on the teacher side: student (the student's own "
                                        "context, today) or template (the teacher's template and "
                                        "thinking setting with an empty reference)")

    def __post_init__(self) -> None:
        require(self.kind in registered("task"), "task.kind", self.kind,
                f"one of {registered('task')} (registered task kinds, harness/tasks/)")
        require(2 <= self.modulus <= 100, "task.modulus", self.modulus, "in [2, 100]")
        lo_hi = list(self.train_ops)
        require(len(lo_hi) == 2 and 1 <= lo_hi[0] <= lo_hi[1] <= 12, "task.train_ops",
                lo_hi, "[min, max] with 1 <= min <= max <= 12")
        require(self.val_size >= 1, "task.val_size", self.val_size, ">= 1")
        require(self.grader in ("synthetic", "math"), "task.grader", self.grader, "synthetic or math")
        names = [s.name for s in self.suites]
        require(len(names) == len(set(names)), "task.suites", names, "names must be unique")
        require("{reference}" in self.teacher_template, "task.teacher_template",
                self.teacher_template, "must contain {reference}")
        require(self.max_teacher_tokens >= 0, "task.max_teacher_tokens", self.max_teacher_tokens,
                ">= 0")
        require(self.empty_reference in EMPTY_REFERENCES, "task.empty_reference",
                self.empty_reference, f"one of {EMPTY_REFERENCES}")
        if self.kind == "math":
            require(self.train_data is not None, "task.train_data", self.train_data,
                    "the math task needs a training dataset")
            require(len(self.eval_data) >= 1, "task.eval_data", self.eval_data,
                    "the math task needs at least one evaluation suite")
            names = [d.name for d in self.eval_data]
            require(len(names) == len(set(names)), "task.eval_data", names, "names must be unique")
