"""Bad input on the real path is one line before launch, with nothing written (harness/front/preflight.py).

python -m pytest -q tests/test_preflight.py

Each bad input goes through the sweep planner (harness/front/plan.py, as `python -m harness.run -m`
does) on a tiny random Qwen3 with a chat template and the math fixtures: the error is one
ConfigError line naming the bad value, and the results root stays absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_chat_model import FIXTURES, build

from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.front.plan import plan
from harness.front.preflight import check_inputs

ROOT = Path(__file__).resolve().parent.parent
TRAIN = FIXTURES / "openthoughts_math_30k_opsd.jsonl"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("tiny_qwen3_chat"))


def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in TRAIN.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rows_40(tmp_path: Path) -> Path:
    """A new user's 40-row training file (the fixture's rows, each problem made distinct)."""
    rows = fixture_rows()
    return write_jsonl(tmp_path / "train40.jsonl", [
        {**rows[i % len(rows)], "problem": f"{rows[i % len(rows)]['problem']} (variant {i})"}
        for i in range(40)])


def overrides(model: Path, train: Path, results: Path, *extra: str) -> list[str]:
    return ["task=math", f"model.path={model}", f"task.train_data.path={train}",
            f"task.eval_data.0.path={FIXTURES / 'aime_2024.jsonl'}",
            f"task.eval_data.1.path={FIXTURES / 'aime_2025.json'}",
            f"task.eval_data.2.path={FIXTURES / 'hmmt_feb_2025.json'}",
            "profile=smoke", f"results={results}", *extra]


def model_copy(model: Path, dest: Path, drop: tuple[str, ...] = (), config_edit=None) -> Path:
    """The model folder's small files (no weights: the checks never read them), some left out."""
    dest.mkdir()
    for f in model.iterdir():
        if f.suffix != ".safetensors" and f.name not in drop:
            shutil.copy(f, dest / f.name)
    if config_edit:
        config = json.loads((dest / "config.json").read_text())
        config_edit(config)
        (dest / "config.json").write_text(json.dumps(config))
    return dest


def refused(args: list[str], results: Path) -> str:
    """The planner's one-line refusal; the results root must stay absent."""
    with pytest.raises(ConfigError) as err:
        plan([], args, compose)
    assert "\n" not in str(err.value)
    assert not results.exists(), sorted(results.rglob("*"))
    return str(err.value)


def test_the_fixture_setup_and_the_paper_preset_pass(model_dir, tmp_path):
    check_inputs(compose(overrides(model_dir, TRAIN, tmp_path / "res", "task.val_size=2")))
    # Hub ids (model and data) are not fetched: nothing cached, nothing to check, no network.
    check_inputs(compose(["experiment=paper_qwen3_1p7b"]))


def test_too_few_training_rows_for_val_size_names_it(model_dir, tmp_path):
    res = tmp_path / "res"
    msg = refused(overrides(model_dir, rows_40(tmp_path), res, "task.val_size=64", "exposure=0,1"), res)
    assert msg.startswith("task.val_size=64 is invalid: task data train has 40 training rows")
    assert "set task.val_size below 40" in msg
    # Eval problems are removed from training first, as the run does: 10 rows, 2 in the suites.
    rows = fixture_rows()
    eval_rows = [{"id": i, "problem": r["problem"], "answer": r["Answer"]} for i, r in enumerate(rows[:2])]
    eval_file = write_jsonl(tmp_path / "eval.jsonl", eval_rows)
    msg = refused(overrides(model_dir, TRAIN, res, "task.val_size=8", f"task.eval_data.0.path={eval_file}"),
                  res)
    assert "has 8 training rows (after removing eval problems)" in msg


def test_bad_rows_name_their_file_and_row(model_dir, tmp_path):
    res = tmp_path / "res"
    rows = fixture_rows()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]) + "{not json\n")
    assert refused(overrides(model_dir, broken, res), res) == f"{broken}:3 is not valid JSON"
    no_field = write_jsonl(tmp_path / "no_field.jsonl", [rows[0], {"problem": "x", "Answer": "1"}])
    msg = refused(overrides(model_dir, no_field, res), res)
    assert msg == f"task data train: row 1 of '{no_field}' lacks field(s) ['solution']"
    no_answer = write_jsonl(tmp_path / "no_answer.jsonl", [rows[0], {**rows[1], "Answer": ""}])
    msg = refused(overrides(model_dir, no_answer, res), res)
    assert msg == f"task data train: row 1 of '{no_answer}' has no answer"
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    msg = refused(overrides(model_dir, TRAIN, res, f"task.eval_data.1.path={empty}"), res)
    assert msg == f"task data aime25: '{empty}' has no rows"


def test_a_model_config_without_vocab_size(model_dir, tmp_path):
    res = tmp_path / "res"
    bad = model_copy(model_dir, tmp_path / "novocab", config_edit=lambda c: c.pop("vocab_size"))
    msg = refused(overrides(bad, TRAIN, res, "task.val_size=2"), res)
    assert msg.startswith(f"model.path='{bad}' is invalid: its config.json has no vocab_size")
    (bad / "config.json").write_text("{broken")
    msg = refused(overrides(bad, TRAIN, res, "task.val_size=2"), res)
    assert msg.startswith(f"model.path='{bad}' is invalid: cannot read {bad / 'config.json'}")


def test_a_tokenizer_without_chat_template_while_the_task_wants_one(model_dir, tmp_path):
    res = tmp_path / "res"
    bad = model_copy(model_dir, tmp_path / "notemplate", drop=("chat_template.jinja",))
    msg = refused(overrides(bad, TRAIN, res, "task.val_size=2"), res)
    assert msg.startswith(f"task.chat_template=true is invalid: the tokenizer at model.path='{bad}' "
                          "has no chat template")
    check_inputs(compose(overrides(bad, TRAIN, res, "task.val_size=2", "task.chat_template=false")))
    # An older save keeps the template in tokenizer_config.json: that counts.
    tc = json.loads((bad / "tokenizer_config.json").read_text())
    (bad / "tokenizer_config.json").write_text(json.dumps({**tc, "chat_template": "{{ messages }}"}))
    check_inputs(compose(overrides(bad, TRAIN, res, "task.val_size=2")))
    no_tok = model_copy(model_dir, tmp_path / "notok", drop=("tokenizer.json", "tokenizer_config.json"))
    msg = refused(overrides(no_tok, TRAIN, res, "task.val_size=2"), res)
    assert msg == f"model.path='{no_tok}' is invalid: it holds no tokenizer (none of " \
                  "tokenizer_config.json, tokenizer.json)"


def harness_run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "harness.run", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_sweep_refuses_the_40_row_file_in_one_line_and_writes_nothing(model_dir, tmp_path):
    res = tmp_path / "res"
    args = overrides(model_dir, rows_40(tmp_path), res, "task.val_size=64", "exposure=0,1")
    out = harness_run(["-m", *args])
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [
        "error: task.val_size=64 is invalid: task data train has 40 training rows (after removing eval "
        "problems), which leave none beside 64 validation rows; set task.val_size below 40 or give "
        "more rows"]
    assert not res.exists()


def test_a_single_run_refuses_the_40_row_file_before_its_folder_is_written(model_dir, tmp_path):
    res = tmp_path / "res"
    out = harness_run(overrides(model_dir, rows_40(tmp_path), res, "task.val_size=64"))
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(out.stderr.strip().splitlines()) == 1 and "task.val_size=64 is invalid" in out.stderr
    # Hydra makes its own results/.hydra/<time> before the app starts; no run folder, no lock.
    assert sorted(p.name for p in res.iterdir()) == [".hydra"]
