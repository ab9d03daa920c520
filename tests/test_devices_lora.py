"""Device/dtype decision, model configs, and LoRA OPSD on a tiny Qwen3 (CPU only).

python -m pytest -q tests/test_devices_lora.py
"""

from __future__ import annotations

import json

import pytest
import torch

from harness.compute.device import choose
from harness.config.schema import ConfigError
from harness.config.settings import compose, compose_resolved
from harness.models.base_identity import base_key

LORA = ["model.lora.r=4", "model.lora.target_modules=[q_proj,v_proj,up_proj]"]


# ---- device and precision -----------------------------------------------------------------
def test_cpu_is_fp32_and_auto_on_cuda_is_bf16():
    cpu = choose("auto", cuda=False)
    assert (cpu.device, cpu.compute, cpu.weights_dtype) == ("cpu", "float32", torch.float32)
    assert cpu.train_flags() == {"use_cpu": True, "bf16": False, "fp16": False}
    # Full fine-tuning on CUDA keeps fp32 master weights under bf16 / fp16 autocast; with
    # LoRA only the adapters train (peft keeps them fp32) and the frozen base is half.
    gpu = choose("auto", cuda=True)
    assert (gpu.device, gpu.compute, gpu.weights_dtype) == ("cuda", "bfloat16", torch.float32)
    assert gpu.train_flags() == {"use_cpu": False, "bf16": True, "fp16": False}
    assert gpu.note() is None
    assert choose("auto", lora=True, cuda=True).weights_dtype == torch.bfloat16
    assert choose("float16", cuda=True).weights_dtype == torch.float32
    assert choose("float16", lora=True, cuda=True).weights_dtype == torch.float16
    # On a CPU an explicit bf16 is taken as asked, and said in one line.
    cpu_bf16 = choose("bfloat16", cuda=False)
    assert cpu_bf16.weights_dtype == torch.bfloat16 and "pure bf16" in cpu_bf16.note()
    assert choose("bfloat16", lora=True, cuda=False).note() is None


def test_explicit_dtype_is_honoured_and_bad_ones_are_one_line():
    assert choose("bfloat16", cuda=False).train_flags() == {"use_cpu": True, "bf16": True, "fp16": False}
    assert choose("float32", cuda=True).train_flags()["bf16"] is False
    with pytest.raises(ConfigError, match="model.dtype='float16'.*CUDA"):
        choose("float16", cuda=False)
    with pytest.raises(ConfigError, match="model.dtype='half'"):
        compose(["profile=smoke", "model.dtype=half"])


def test_sdft_args_and_load_follow_model_dtype(smoke_base):
    from harness.models.tiny import load
    from harness.trainers.build import sdft_args

    cfg = compose(["profile=smoke", "model.dtype=bfloat16"])
    args = sdft_args(cfg, "/tmp/unused")
    assert args.bf16 and not args.fp16 and args.use_cpu == (not torch.cuda.is_available())
    model, _ = load(smoke_base, cfg.model)
    assert model.dtype == torch.bfloat16
    smoke = compose(["profile=smoke"]).model  # full fine-tuning: fp32 master weights on CUDA too
    model, _ = load(smoke_base, smoke)
    assert model.dtype == (torch.bfloat16 if torch.cuda.is_available() and smoke.lora.r else torch.float32)


# ---- model configs ------------------------------------------------------------------------
@pytest.mark.parametrize("option,hub_id", [("qwen3_1p7b", "Qwen/Qwen3-1.7B"),
                                           ("qwen3_4b", "Qwen/Qwen3-4B"),
                                           ("qwen3_8b", "Qwen/Qwen3-8B")])
def test_qwen3_configs_compose_to_hub_ids_not_checked_on_disk(option, hub_id):
    m = compose([f"model={option}"]).model
    assert (m.path, m.trust_remote_code, m.lora.r) == (hub_id, False, 0)


def test_bad_model_values_name_their_key():
    for override in ["model.lora.r=-1", "model.lora.dropout=1.5", "model.lora.alpha=0",
                     "model.path=./no/such", "model.lora.target_modules=[]"]:
        key = override.split("=")[0]
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
            compose(["profile=smoke", override])
        assert "\n" not in str(err.value)


def test_run_time_model_keys_leave_the_base_key_alone():
    """dtype, trust_remote_code and LoRA do not shape the base weights (shipped key stays)."""
    plain = base_key(compose([]))
    assert plain == base_key(compose(["model.dtype=bfloat16", "model.trust_remote_code=true", *LORA]))
    assert plain != base_key(compose(["model.hidden_size=64"]))


# ---- LoRA OPSD ------------------------------------------------------------------------------
def lora_trainer(cfg, base_path, rd):
    """The trainer harness.run builds, kept in hand so the test can look inside it."""
    from datasets import Dataset
    from transformers import set_seed

    from harness.models.tiny import load
    from harness.prompts.templates import Prompts
    from harness.run import train_rows
    from harness.sources.pick import make_source
    from harness.tasks.datasets import TaskData
    from harness.trainers.build import sdft_args
    from harness.trainers.opsd import OPSDTrainer

    set_seed(cfg.seed)
    model, tok = load(base_path, cfg.model)
    data = TaskData(cfg.task)
    rows, problems = train_rows(cfg, data, Prompts(cfg, tok))
    rd.start_afresh()
    return OPSDTrainer(model=model, args=sdft_args(cfg, str(rd.checkpoints)),
                       train_dataset=Dataset.from_list(rows), processing_class=tok, run_cfg=cfg,
                       problems=problems, exposure_source=make_source(cfg, evaluator=(data, tok)),
                       run_dir=rd)


def test_lora_step_trains_only_adapters_and_base_teacher_is_adapters_off(tmp_path, smoke_base):
    from peft import PeftModel

    from harness.models.tiny import count_params, load
    from harness.runs.rundir import RunDir

    cfg = compose(["profile=smoke", f"results={tmp_path}", "train.steps=1", "exposure=0.5", *LORA])
    rd = RunDir(tmp_path / cfg.run_name)
    rd.path.mkdir(parents=True)
    trainer = lora_trainer(cfg, smoke_base, rd)
    base_model, tok = load(smoke_base, cfg.model)
    model = trainer.model
    assert isinstance(model, PeftModel)
    # No second copy: the teacher is the student object itself, and the only weights are
    # the base model's plus the adapters.
    assert trainer.teacher_model is model
    adapters_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert adapters_before and all("lora_" in n for n in adapters_before)
    assert count_params(model) == count_params(base_model) + sum(p.numel() for p in adapters_before.values())
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}

    trainer.train()

    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in frozen_before.items())
    assert any(not torch.equal(after[n], p) for n, p in adapters_before.items())
    ids_B_T = tok(["ref : 1 + 2 = 3 ; ans 3 | 1 + 2 ?", "4 x 5 ?"], return_tensors="pt",
                  padding=True)
    with torch.no_grad():
        base_logits_B_T_V = base_model(**ids_B_T).logits
        student_logits_B_T_V = model(**ids_B_T).logits
        with trainer._get_teacher_context_for_self_distillation():
            teacher_logits_B_T_V = trainer.teacher_model(**ids_B_T).logits
    assert torch.equal(teacher_logits_B_T_V, base_logits_B_T_V)
    assert not torch.allclose(student_logits_B_T_V, base_logits_B_T_V)
    row = [json.loads(x) for x in rd.metrics_path.read_text().splitlines() if '"train"' in x][0]
    assert row["step"] == 1 and row["mismatch_kl_st"] > 0  # r = 0.5: the teacher sees more


def test_lora_run_end_to_end_through_harness_run(tmp_path, smoke_base):
    from harness.run import run

    cfg, resolved = compose_resolved(["profile=smoke", f"results={tmp_path}", "exposure=0", "train.steps=2",
                                      "teacher.mode=base", *LORA])
    run(cfg, resolved)
    folder = tmp_path / cfg.run_name
    assert json.loads((folder / "status.json").read_text())["state"] == "done"
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    # r = 0 and the adapters start at zero: at step 1 the base teacher (adapters off) sees
    # the student's own context with the student's own weights, so the mismatch is zero.
    assert train[0]["mismatch_kl_st"] == pytest.approx(0, abs=1e-6)
    assert "lora" in (folder / "config.yaml").read_text()
    assert (folder / "eval.json").is_file()


def test_lora_run_killed_after_a_checkpoint_resumes_to_the_same_rows(tmp_path, smoke_base):
    """Checkpoints of a LoRA run hold the adapters only; a resumed run matches an unbroken one."""
    import os
    import subprocess
    import sys

    def run_in(results, fault=""):
        env = {**os.environ, "HARNESS_FAULT": fault}
        return subprocess.run([sys.executable, "-m", "harness.run", "profile=smoke", f"results={results}",
                               "exposure=0.5", *LORA], env=env, capture_output=True, text=True).returncode

    assert run_in(tmp_path / "broken", "opsd-r0.5-s0:kill@3") != 0
    assert (tmp_path / "broken/opsd-r0.5-s0/checkpoints/checkpoint-2/adapter_model.safetensors").is_file()
    assert run_in(tmp_path / "broken") == 0 and run_in(tmp_path / "whole") == 0

    def rows(results):
        lines = (results / "opsd-r0.5-s0/metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "wall_time"} for x in lines]

    assert rows(tmp_path / "broken") == rows(tmp_path / "whole")
