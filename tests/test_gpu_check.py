"""make gpu-check: its CPU variant end to end, and its CUDA settings composed (no GPU here).

python -m pytest -q tests/test_gpu_check.py

The CPU variant is the GPU check's own path (harness.run's run() on a random Qwen3 at the real
vocabulary, 3 OPSD steps, the probe, an HF Average@k on 8 problems) at a tiny width. The CUDA
variant cannot run here, so its config is composed on a 1.7B-shaped config.json (no weights):
a typo in its overrides, or a preset change that drops its lengths, fails here, not on the GPU.
"""

from __future__ import annotations

import json
import mmap
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
    # each phase of the plan measured (peak RSS here, reset per phase) beside the plan's figure for it
    assert {"setup", "generation", "train step", "probe", "eval"} <= set(r["phase_peak_gb"])
    assert all(v > 0 for v in r["phase_peak_gb"].values())
    assert {"generation", "train step", "probe", "eval"} <= set(r["plan_phase_gb"])
    out = capsys.readouterr().out
    assert "| step | seconds | rollout tokens | tokens/s | probe | peak GB |" in out
    assert "| phase | measured peak RSS GB (libraries included) | device used GB | plan GB |" in out
    assert (tmp_path / "out" / "gpu_check.md").read_text().strip() in out
    # each step and the training's end printed as they happen (a stopped check shows where it was)
    assert [f"gpu-check: step {i} took" in out for i in (1, 2, 3)] == [True] * 3
    assert "gpu-check: training done in" in out
    assert r["stage"] == "complete" and "PARTIAL" not in out
    # the loss-kernel comparison ran (first, so a stopped check keeps it)
    assert r["kernel"].get("seconds", {}).keys() == {"harness", "trl"}


def test_a_partial_report_says_so_and_keeps_the_steps_measured(tmp_path):
    """What the first GPU run lacked: figures written before the end (its call's limit stopped it in
    the evaluation, and the report was written only at the end)."""
    report = gpu_measure.Report("cuda: test", {"hidden_size": 2048}, [], 2, 32, 2048)
    meter = gpu_measure.PhaseMeter(cuda=False)
    timer = gpu_measure.step_timer(False, meter)
    timer.start, timer.ends, timer.peaks = 10.0, [321.0, 466.5], [40 * gpu_measure.GB, 38 * gpu_measure.GB]
    progress = gpu_check.Progress(report, meter, tmp_path, t0=0.0)
    progress.step(timer)
    r = json.loads((tmp_path / "gpu_check.json").read_text())
    assert r["stage"] == "training"
    rows = [(s["step"], s["seconds"], s["peak_gb"]) for s in r["steps"]]
    assert rows == [(1, 311.0, 40.0), (2, 145.5, 38.0)]
    assert [s["tokens_per_s"] for s in r["steps"]] == [None, None]  # tokens come from the run's metrics
    timer.train_end, timer.train_peak = 470.0, 40 * gpu_measure.GB
    progress.train_end(timer)
    r = json.loads((tmp_path / "gpu_check.json").read_text())
    assert (r["stage"], r["train_s"], r["train_peak_gb"]) == ("evaluation", 460.0, 40.0)
    assert "PARTIAL: written while the evaluation ran" in (tmp_path / "gpu_check.md").read_text()


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
    assert (cfg.model.lora.r, cfg.train.top_k, cfg.task.max_teacher_tokens, cfg.probe.max_rows) == (
        64, preset.train.top_k, preset.task.max_teacher_tokens, preset.probe.max_rows)
    assert (cfg.train.steps, cfg.probe.every, cfg.eval.backend, cfg.train.generation) == (2, 3, "hf", "hf")
    # the H200's measured 458 s of training leave the evaluation a minute of a 10-minute call
    assert len([*map(json.loads, eval_file.read_text().splitlines())]) == 8
    assert cfg.eval.k * 8 <= 16 and cfg.eval.max_new_tokens <= 512
    # An HF evaluation the harness would refuse (eval.hf_max_new_tokens) would stop the check.
    assert cfg.eval.max_new_tokens <= cfg.eval.hf_max_new_tokens
    p = plan(cfg)
    assert p.device == "cuda" and 0 < p.total < cfg.launcher.gpu_mem_gb * 1e9
    # the phases the check measures, each with the plan's figure to hold it against
    assert set(gpu_measure.plan_by_phase(cfg)) == {"generation", "train step", "probe", "eval"}


def test_the_phase_meter_charges_nested_phases_to_the_inner_one_and_restores_the_methods():
    """The rollouts and the probe run inside a training_step: each phase gets its own peak, the
    outer keeps what ran outside the inner, and the patched classes get their methods back."""
    from harness.trainers.hooks import RunHooks
    from harness.trainers.opsd import OPSDTrainer

    meter = gpu_measure.PhaseMeter(cuda=False)
    before = (vars(OPSDTrainer).get("training_step"), RunHooks.probe_rows)
    with gpu_measure.metered(meter):
        assert OPSDTrainer.training_step is not before[0] and RunHooks.probe_rows is not before[1]
        meter.enter("train step")
        meter.enter("probe")
        # 200 MB touched inside the probe only, in fresh anonymous pages: a bytearray may reuse a
        # large free chunk the allocator kept resident after earlier tests (no RSS rise: CI saw it)
        block = mmap.mmap(-1, 200_000_000)
        block[::4096] = b"x" * len(block[::4096])
        block.close()
        meter.exit()
        meter.exit()
    assert "training_step" not in vars(OPSDTrainer) and RunHooks.probe_rows is before[1]
    peaks = meter.gb()
    assert peaks["probe"] - peaks["train step"] > 0.15  # the reset left the block to the probe
    assert meter.overall() >= meter.peaks["probe"]


def test_vllm_absent_is_a_skip_not_a_failure(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError(name='vllm')
    assert gpu_check.vllm_import_error() == "vllm not installed"
    report = gpu_measure.Report("cuda: test", {}, [], 1, 1, 1)
    gpu_check.vllm_stage(True, [], tmp_path, report)
    assert report.vllm == "skipped: vllm not installed"


def test_long_refs_0_keeps_the_fixtures_references(tmp_path):
    from harness.models.qwen3_shaped import build

    model = build(tmp_path / "m", vocab_size=151_936, hidden_size=16, layers=1, intermediate_size=32)
    path, longest = gpu_check.references(tmp_path, model, 0)
    assert path == gpu_check.TRAIN_FILE and 10 < longest < 200
    path, longest = gpu_check.references(tmp_path, model, 1000)
    assert path != gpu_check.TRAIN_FILE and 900 < longest < 1100


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
