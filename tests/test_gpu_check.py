"""make gpu-check: its CPU variant end to end, and its CUDA settings composed (no GPU here).

python -m pytest -q tests/test_gpu_check.py

The CPU variant is the GPU check's own path (harness.run's run() on a random Qwen3 at the real
vocabulary, 3 OPSD steps, the probe, an HF Average@k on 8 problems) at a tiny width. The CUDA
variant cannot run here, so its config is composed on a 1.7B-shaped config.json (no weights):
a typo in its overrides, or a preset change that drops its lengths, fails here, not on the GPU.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.bench import gpu_check, gpu_measure, gpu_wheels
from harness.config.settings import compose


def test_the_cpu_variant_runs_the_real_path_and_reports(tmp_path, capsys):
    gpu_check.main(["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    r = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert r["device"] == "cpu" and r["shape"]["vocab_size"] == 151_936 and r["micro_batch"] == 1
    assert [s["step"] for s in r["steps"]] == [1, 2, 3]
    assert [s["probe"] for s in r["steps"]] == [True, False, True]  # probe.every=3: steps 1 and 3
    assert r["probe_rows"] == 2 * 5  # five exposures each time
    assert all(s["seconds"] > 0 and s["tokens_per_s"] > 0 and s["peak_gb"] > 0 for s in r["steps"])
    assert r["eval"] == {"check8": {"average": r["eval"]["check8"]["average"], "k": 2, "num_problems": 8}}
    run_dir = tmp_path / "work" / "runs" / "gpu_check"
    assert len((run_dir / "eval_samples.jsonl").read_text().splitlines()) == 8 * 2
    assert r["plan_total_gb"] > 0 and r["plan_note"].startswith("plan: ")
    # long references (the CPU budget's 512 teacher tokens; 20k on CUDA), the plan per part, vLLM's stage
    assert r["reference_tokens"] >= 400 and gpu_check.REF_TOKENS[True] == 20_000
    assert {"probe", "teacher forward", "activations"} <= set(r["plan_parts_gb"])
    assert r["vllm"] == "skipped: no CUDA"
    out = capsys.readouterr().out
    assert "| step | seconds | rollout tokens | tokens/s | probe | peak GB |" in out
    assert (tmp_path / "out" / "gpu_check.md").read_text().strip() in out


def qwen3_1p7b_folder(folder: Path) -> Path:
    """A model folder holding only the 1.7B shape's config.json: what composing and planning read."""
    from transformers import Qwen3Config

    s = gpu_check.QWEN3_1P7B
    folder.mkdir()
    Qwen3Config(vocab_size=s.vocab_size, hidden_size=s.hidden_size, intermediate_size=s.intermediate_size,
                num_hidden_layers=s.layers, num_attention_heads=s.heads, num_key_value_heads=s.kv_heads,
                head_dim=s.head_dim, tie_word_embeddings=True).save_pretrained(folder)
    return folder


def test_the_cuda_variant_keeps_the_presets_lengths_micro_batch_and_lora(tmp_path):
    from harness.memory.plan import plan

    model = qwen3_1p7b_folder(tmp_path / "q3")
    eval_file = gpu_check.write_eval_problems(tmp_path / "check8.jsonl")
    cfg = compose(gpu_check.overrides(gpu_check.settings(cuda=True), model, eval_file, tmp_path / "runs", []))
    preset = compose(["experiment=paper_qwen3_1p7b"])
    assert (cfg.train.max_completion_length, cfg.train.prompts_per_step, cfg.micro_batch) == (
        preset.train.max_completion_length, preset.train.prompts_per_step, preset.micro_batch)
    assert (cfg.model.lora.r, cfg.train.top_k, cfg.task.max_teacher_tokens) == (
        64, preset.train.top_k, preset.task.max_teacher_tokens)
    assert (cfg.train.steps, cfg.probe.every, cfg.eval.backend, cfg.train.generation) == (3, 3, "hf", "hf")
    assert len([*map(json.loads, eval_file.read_text().splitlines())]) == 8
    # An HF evaluation the harness would refuse (eval.hf_max_new_tokens) would stop the check.
    assert cfg.eval.max_new_tokens <= cfg.eval.hf_max_new_tokens
    p = plan(cfg)
    assert p.device == "cuda" and 0 < p.total < cfg.launcher.gpu_mem_gb * 1e9


def test_without_the_memory_plan_it_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "harness.memory.plan", None)  # import fails as if absent
    assert gpu_measure.plan_total(compose(["profile=smoke"])) == (None, "plan: not available")


def test_the_wheels_are_the_pinned_versions():
    specs = dict(s.split("==") for s in gpu_wheels.wheel_specs())
    pins = gpu_wheels.pins()
    assert specs.keys() == set(gpu_wheels.GPU_WHEELS)
    for name in ("trl", "transformers", "peft", "datasets", "hydra-core", "submitit", "math-verify"):
        assert specs[name] == pins[name]
    assert all(v for v in specs.values())


@pytest.mark.parametrize("target", ["gpu-check", "gpu-wheels"])
def test_the_make_targets_exist(target):
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert f"\n{target}:" in makefile
