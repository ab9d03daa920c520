"""The math task end to end on a tiny random Qwen3 with a BPE tokenizer and a chat template.

python -m pytest -q tests/test_math_task.py

Fixture files hold rows in the public datasets' schemas (tests/fixtures/math/: the
OpenThoughts-math training set's problem/solution/Answer, AIME24's id/problem/solution/
answer, AIME25's id/problem/answer, HMMT25's problem_idx/problem/answer, the last
written to parquet here). The teacher must see exactly the configured part of the
reference; r = 0 without keep_answer must give the student's context.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from tiny_chat_model import FIXTURES, build

from harness.config.schema import ConfigError
from harness.config.settings import compose, compose_resolved
from harness.prompts.templates import Prompts
from harness.runs.rundir import read_jsonl
from harness.tasks.datasets import TaskData
from harness.tasks.grading import grade
from harness.tasks.math_data import STEP_SEP, load_problems


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("tiny_qwen3_chat"))


@pytest.fixture(scope="module")
def hmmt_parquet(tmp_path_factory) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = json.loads((FIXTURES / "hmmt_feb_2025.json").read_text())
    path = tmp_path_factory.mktemp("hmmt") / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def math_overrides(model_dir: Path, hmmt: Path, *extra: str) -> list[str]:
    return ["task=math", f"model.path={model_dir}", "profile=smoke",
            f"task.train_data.path={FIXTURES / 'openthoughts_math_30k_opsd.jsonl'}",
            f"task.eval_data.0.path={FIXTURES / 'aime_2024.jsonl'}",
            f"task.eval_data.1.path={FIXTURES / 'aime_2025.json'}",
            f"task.eval_data.2.path={hmmt}", "task.val_size=2", *extra]


@pytest.fixture(scope="module")
def math_setup(model_dir, hmmt_parquet):
    from harness.models.tiny import load

    cfg = compose(math_overrides(model_dir, hmmt_parquet))
    _, tok = load(model_dir)
    return cfg, tok, TaskData(cfg.task)


def test_loaders_read_every_schema_and_the_grader_scores_the_fixture_answers(math_setup):
    cfg, _, data = math_setup
    assert {k: len(v) for k, v in data.suites.items()} == {"aime24": 2, "aime25": 2, "hmmt25": 2}
    assert data.suites["hmmt25"][0].id == "hmmt25-1" and data.suites["hmmt25"][0].answer == "\\frac{5}{6}"
    assert len(data.loaded.train_rows) == 8 and len(data.validation) == 2
    train = data.loaded.train_rows + data.validation
    assert all(len(p.steps) >= 2 for p in train)
    for p in train:  # the reference solution's own boxed answer grades correct
        assert grade("math", p.solution, p.answer)[1], p.id
        assert not grade("math", "\\boxed{12345}", p.answer)[1]
    for suite in data.suites.values():
        for p in suite:
            assert grade("math", f"so the answer is \\boxed{{{p.answer}}}.", p.answer)[1]
    assert grade("math", "\\boxed{0.5}", "\\frac{1}{2}")[1]


def test_a_missing_file_or_field_is_one_config_line(model_dir, hmmt_parquet, tmp_path):
    from harness.models.base_identity import resolve_base

    with pytest.raises(ConfigError, match=r"^model.path=None is invalid: task=math needs a model"):
        resolve_base(compose(["task=math"]))
    with pytest.raises(ConfigError, match=r"^task data train: file '/nope.jsonl' does not exist$"):
        compose(math_overrides(model_dir, hmmt_parquet, "task.train_data.path=/nope.jsonl"))
    with pytest.raises(ConfigError) as err:
        compose(math_overrides(model_dir, hmmt_parquet, "task.eval_data.2.answer=Answer"))
    assert "\n" not in str(err.value) and "lacks field(s) answer='Answer'" in str(err.value)
    # No answer field: the last \boxed{} of the solution is the answer.
    src = replace(compose(math_overrides(model_dir, hmmt_parquet)).task.train_data, answer=None)
    assert load_problems(src)[1].answer == "\\frac{3}{4}"


def test_student_and_teacher_thinking_are_set_apart(math_setup):
    cfg, tok, data = math_setup
    prompts = Prompts(cfg, tok)
    p = data.loaded.train_rows[0]
    assert prompts.student(p).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert prompts.teacher(p, 0.5).endswith("<|im_start|>assistant\n")
    assert "reference solution" in prompts.teacher(p, 0.5)


@pytest.mark.parametrize("r", [0.1, 0.3, 0.5, 0.77, 1.0])
def test_token_cut_is_exact_in_token_ids(math_setup, r):
    cfg, tok, data = math_setup
    prompts = Prompts(cfg, tok)
    for p in data.loaded.train_rows:
        ref = tok(p.solution, add_special_tokens=False)["input_ids"]
        cut = ref[:math.ceil(r * len(ref))]
        head, tail = prompts.chat(cfg.task.teacher_template.format(problem=p.problem, reference="\0"),
                                  True).split("\0")
        want = tok(head)["input_ids"] + cut + tok(tail, add_special_tokens=False)["input_ids"]
        ids, was_cut = prompts.teacher_ids(p, r)
        assert ids == want and not was_cut


def test_r0_without_keep_answer_is_the_student_context(math_setup):
    cfg, tok, data = math_setup
    for unit in ("tokens", "steps"):
        prompts = Prompts(replace(cfg, exposure_unit=unit), tok)
        for p in data.loaded.train_rows:
            assert prompts.teacher(p, 0.0) == prompts.student(p)
            assert prompts.teacher_ids(p, 0.0) == (tok(prompts.student(p))["input_ids"], False)


def test_paper_exposure_steps_with_the_answer_always_shown(math_setup):
    cfg, tok, data = math_setup
    task = replace(cfg.task, keep_answer=True)
    prompts = Prompts(replace(cfg, exposure_unit="steps", task=task), tok)
    suffix = f"{task.transition} \\boxed{{{{}}}}."
    for p in data.loaded.train_rows:
        ans = suffix.replace("{}", p.answer)
        for r in (0.0, 0.5):
            k = math.ceil(r * len(p.steps))
            want = STEP_SEP.join([*p.steps[:k], ans])
            assert prompts.reference(p, r) == want
            ids, _ = prompts.teacher_ids(p, r)
            assert want in tok.decode(ids)
        assert prompts.reference(p, 1.0) == STEP_SEP.join(p.steps)  # it ends in its own answer
        assert p.steps[0] not in prompts.teacher(p, 0.0) and ans in prompts.teacher(p, 0.0)


def test_a_reference_over_budget_is_cut_from_its_end_never_the_problem(math_setup):
    cfg, tok, data = math_setup
    p = max(data.loaded.train_rows, key=lambda x: len(x.solution))
    full, _ = Prompts(cfg, tok).teacher_ids(p, 1.0)
    budget = len(full) - 5
    small = Prompts(replace(cfg, task=replace(cfg.task, max_teacher_tokens=budget)), tok)
    ids, was_cut = small.teacher_ids(p, 1.0)
    assert was_cut and len(ids) == budget
    assert ids[-30:] == full[-30:] and ids[:10] == full[:10]  # the problem + template survive
    # the cut took the reference's end, so the answer follows the cut (the teacher still sees it)
    assert f"{cfg.task.transition} \\boxed{{{p.answer}}}." in tok.decode(ids)
    assert small.teacher_ids(p, 0.1) == (Prompts(cfg, tok).teacher_ids(p, 0.1)[0], False)


@pytest.mark.parametrize("lora", ["model.lora.r=0", "model.lora.r=4"])
def test_math_run_end_to_end(model_dir, hmmt_parquet, tmp_path, lora):
    """The math path with and without LoRA (adapters on the tiny chat Qwen3)."""
    from harness.run import run

    overrides = math_overrides(model_dir, hmmt_parquet, f"results={tmp_path}", "exposure=0.5",
                               "train.steps=2", "train.prompts_per_step=2", "probe.every=1",
                               "train.max_completion_length=8", "eval.k=1",
                               "eval.max_new_tokens=8", "train.checkpoint_every=0", lora)
    cfg, resolved = compose_resolved(overrides)
    run(cfg, resolved)
    folder = tmp_path / cfg.run_name
    rows = list(read_jsonl(folder / "metrics.jsonl"))
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    assert all(r["teacher_ref_cut"] == 0.0 and math.isfinite(r["loss"]) for r in train)
    assert {r["probe_exposure"] for r in rows if r["kind"] == "probe"} == set(cfg.probe.exposures)
    ev = json.loads((folder / "eval.json").read_text())
    assert set(ev["suites"]) == {"aime24", "aime25", "hmmt25"}
    assert json.loads((folder / "status.json").read_text())["state"] == "done"


def test_a_cut_inside_a_character_keeps_its_exact_bytes(math_setup):
    """The decode-and-retokenize route (what the cut used to be) moves a boundary that falls
    inside a multi-byte character; ids built from the cut ids do not."""
    from harness.tasks.problem import Problem

    cfg, tok, _ = math_setup
    solution = "Since π ≈ 3.14159,\n\nthe area is $\\boxed{π}$."
    p = Problem(id="pi", problem="What is the area of a unit circle?", solution=solution,
                answer="\\pi", steps=tuple(solution.split("\n\n")))
    ref = tok(solution, add_special_tokens=False)["input_ids"]
    k = next(k for k in range(1, len(ref)) if "\ufffd" in tok.decode(ref[:k]))
    r = k / len(ref)
    assert tok(tok.decode(ref[:k]), add_special_tokens=False)["input_ids"] != ref[:k]
    ids, _ = Prompts(cfg, tok).teacher_ids(p, r)
    assert any(ids[i:i + k] == ref[:k] for i in range(len(ids) - k + 1))
