"""The one trainer construction (harness/trainers/build.py): its TRL arguments equal the ones runs
were trained with before they were gathered into common_trl_args, field by field.

python -m pytest -q tests/test_build_trainer.py

tests/fixtures/trl_args_smoke.json holds every field of sdft_args / grpo_args as the code built
them before build.py (captured on a CPU machine; a transformers/TRL upgrade that adds or changes
fields needs it captured again, after checking the differences are TRL's own).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

FIXTURE = Path(__file__).parent / "fixtures" / "trl_args_smoke.json"
CASES = json.loads(FIXTURE.read_text())


def fields_of(args) -> dict:
    d = {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}
    return json.loads(json.dumps(d, default=repr, sort_keys=True))


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason="captured on CPU: precision and rollout flags differ on CUDA")
@pytest.mark.parametrize("case", sorted(CASES))
def test_args_equal_the_captured_ones_field_by_field(case):
    from harness.config.settings import compose
    from harness.trainers.build import grpo_args, sdft_args

    want = CASES[case]
    cfg = compose(want["overrides"])
    make = sdft_args if cfg.method.loss == "opsd" else grpo_args
    args = make(cfg, "OUT")
    assert type(args).__name__ == want["type"]
    have = fields_of(args)
    old = want["fields"]
    diff = {k: (have.get(k, "<unset>"), old.get(k, "<unset>"))
            for k in set(have) | set(old) if have.get(k, "<unset>") != old.get(k, "<unset>")}
    assert not diff


def test_both_configs_carry_every_common_argument():
    from harness.config.settings import compose
    from harness.trainers.build import common_trl_args, grpo_args, sdft_args

    for overrides, make in ((["profile=smoke", "method=opsd"], sdft_args),
                            (["profile=smoke", "method=grpo"], grpo_args)):
        cfg = compose(overrides)
        common = common_trl_args(cfg, "OUT")
        args = make(cfg, "OUT")
        assert len(common) >= 20
        for key, value in common.items():
            if key == "report_to":  # TrainingArguments normalises it (none -> [])
                continue
            assert getattr(args, key) == value, key
        assert args.max_steps == cfg.train.steps and args.seed == args.data_seed == cfg.seed


class Recorder:
    """An exposure source's bind, recorded."""

    def __init__(self, inner):
        self.inner, self.bound = inner, None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def bind(self, model, tokenizer, teacher=None):
        self.bound = (model, tokenizer, teacher)
        self.inner.bind(model, tokenizer, teacher=teacher)


@pytest.mark.parametrize("method,trainer_name,args_name", [("opsd", "OPSDTrainer", "SDFTConfig"),
                                                          ("grpo", "RLTrainer", "GRPOConfig")])
def test_build_trainer_picks_the_trainer_and_binds_the_source_with_its_teacher(
        tmp_path, smoke_base, method, trainer_name, args_name):
    from transformers import TrainerCallback

    from harness.bench.trainers import problems_and_rows
    from harness.config.settings import compose
    from harness.models.tiny import load
    from harness.runs.rundir import RunDir
    from harness.sources.pick import make_source
    from harness.tasks.datasets import TaskData
    from harness.trainers.build import build_trainer

    class Marker(TrainerCallback):
        pass

    cfg = compose(["profile=smoke", f"method={method}", f"results={tmp_path}"])
    model, tok = load(smoke_base, cfg.model)
    problems, rows = problems_and_rows(cfg, tok)
    source = Recorder(make_source(cfg, evaluator=(TaskData(cfg.task), tok)))
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    marker = Marker()
    trainer = build_trainer(cfg, rd, model, tok, rows, problems, source, callbacks=[marker])
    assert type(trainer).__name__ == trainer_name and type(trainer.args).__name__ == args_name
    assert trainer.args.output_dir == str(rd.checkpoints)
    assert len(trainer.train_dataset) == len(rows)
    assert marker in trainer.callback_handler.callbacks
    bound_model, bound_tok, teacher = source.bound
    assert bound_model is trainer.model and bound_tok is tok
    assert teacher is not None and teacher.model is trainer.teacher_model
