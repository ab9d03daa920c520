"""The memory plan's parts by hand on small configs, its refusals, and the presets.

python -m pytest -q tests/test_memory_plan.py

Each part is checked against its formula (harness/memory/plan.py's docstring) computed here
by hand on a small local folder; the paper presets must fit 80 GB at the micro-batch they
set, train.micro_batch=32 must be refused naming the largest part and a micro-batch that
fits, and the CPU default is never refused. The chunked loss path is passed explicitly:
the plan follows the code in the tree, and these are the numbers of the chunked trainer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.memory import parts
from harness.memory import plan as mp

SHAPE = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 1000, "tie_word_embeddings": True}
L, H, IM, NH, KV, D, V = 2, 64, 128, 4, 2, 16, 1000


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shape")
    (path / "config.json").write_text(json.dumps(SHAPE))
    return path


def cfg_of(folder: Path, *extra: str):
    return compose([f"model.path={folder}", "train.prompts_per_step=4", "train.max_completion_length=100",
                    "probe.every=1", *extra])


def part(plan: mp.Plan, name: str) -> float:
    return next(p.bytes for p in plan.parts if p.name.startswith(name))


def test_shape_params_and_the_qwen3_table():
    assert mp.QWEN3_SHAPES["Qwen/Qwen3-8B"].params() == pytest.approx(8.19e9, rel=0.01)
    assert mp.QWEN3_SHAPES["Qwen/Qwen3-1.7B"].params() == pytest.approx(1.72e9, rel=0.01)
    assert mp.QWEN3_SHAPES["Qwen/Qwen3-4B"].params() == pytest.approx(4.02e9, rel=0.01)


def test_each_part_by_hand_on_the_cpu(folder):
    cfg = cfg_of(folder, "train.micro_batch=2", "train.gradient_checkpointing=false")  # every layer kept
    p = mp.plan(cfg, loss_path="chunked")
    params = V * H + L * (H * NH * D + 2 * H * KV * D + NH * D * H + 3 * H * IM + 2 * H + 2 * D) + H
    assert part(p, "weights") == params * 4  # fp32 on the CPU
    assert part(p, "teacher copy") == params * 4  # teacher.mode=base without LoRA: a frozen copy
    assert part(p, "LoRA + optimiser") == params * 12  # fp32 weights: grad + Adam, no master
    rows, student, teacher, c = 2, 32 + 100, 64 + 100, 100  # synthetic prompt bounds 32 / 2 x 32
    act = 10 * H + 4 * IM + 3 * NH * D + 5 * KV * D
    assert part(p, "activations") == rows * student * L * act * 4
    block = min(rows * c, int(64 * 2**20 // (4 * V)))
    assert part(p, "logits") == 12 * block * V * 4 + 2 * rows * c * H * 4
    # SDPA with padding: a bool [rows, 1, L, L] mask and an additive 2-byte one padded to 16 (review D)
    padded = -(-teacher // 16) * 16
    mask = rows * (teacher * teacher + 2 * padded * padded * 2)
    assert part(p, "teacher forward") == rows * teacher * (4 * H + 3 * IM) * 4 + mask
    # the probe's teacher forward holds all 5 exposures x 2 rows at once (probe.max_rows=0), masks too
    probe_fwd = 5 * rows * teacher * (4 * H + 3 * IM) * 4 + 5 * mask
    assert part(p, "probe") == 6 * rows * c * H * 4 + max(12 * block * V * 4, probe_fwd)
    assert part(p, "generation") == 4 * student * 2 * L * KV * D * 4 + 4 * 4 * V * 4
    eval_len = 32 + 64  # eval.max_new_tokens 64
    assert part(p, "eval") == 512 * eval_len * 2 * L * KV * D * 4 + 4 * 512 * V * 4  # eval.batch_size
    persistent = 2 * params * 4 + params * 12
    phases = {"train step": part(p, "activations") + part(p, "logits") + part(p, "teacher forward"),
              "probe": part(p, "probe"), "generation": part(p, "generation"), "eval": part(p, "eval")}
    assert p.total == persistent + max(phases.values())


def test_cuda_parts_lora_vllm_and_the_full_loss(folder):
    cfg = cfg_of(folder, "launcher.gpus_per_node=1", "model.lora.r=8", "train.generation=auto",
                 "train.vllm_sleep=false", "launcher.gpu_mem_gb=10")
    p = mp.plan(cfg, loss_path="chunked")
    assert p.device == "cuda" and part(p, "weights") == mp.model_shape(cfg).params() * 2  # bf16
    lora = L * 8 * ((H + NH * D) + 2 * (H + KV * D) + (NH * D + H) + 2 * (H + IM) + (IM + H))
    assert part(p, "LoRA + optimiser") == lora * 16
    assert not any(x.name == "teacher copy" for x in p.parts)  # the base is the adapter-off model
    vllm = next(x for x in p.parts if x.name.startswith("generation"))
    assert vllm.bytes == 0.3 * 10 * 1e9 and vllm.phase == "persistent"  # no sleep: held all along
    assert part(p, "eval") == 0.5 * 10 * 1e9
    full = mp.plan(cfg, loss_path="full")  # before the chunked trainer: all rows in one forward
    assert full.micro_batch == 4 and part(full, "logits") == 17 * 4 * 100 * V * 4


def test_micro_batch_32_on_the_8b_preset_is_refused_naming_the_part_and_a_fit():
    # one GPU takes the whole global batch of 32 (on the preset's 2 GPUs a share is 16)
    cfg = compose(["experiment=paper_qwen3_8b", "train.prompts_per_step=32", "train.micro_batch=32",
                   "launcher.gpus_per_node=1", "launcher.gpu_mem_gb=80"])
    with pytest.raises(ConfigError) as err:
        mp.refuse_unfit(cfg, loss_path="chunked")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("train.micro_batch=32 does not fit launcher.gpu_mem_gb=80")
    assert "largest part probe" in msg  # 5 exposures x 32 rows of 23k-token teacher contexts, masks
    best = mp.largest_fitting(cfg, loss_path="chunked")
    assert best is not None and f"train.micro_batch<={best} fits" in msg
    assert mp.fits(cfg, best, 80, "chunked") and not mp.fits(cfg, best * 2, 80, "chunked")


@pytest.mark.parametrize("preset,micro", [("paper_qwen3_1p7b", 2), ("paper_qwen3_4b", 2),
                                          ("paper_qwen3_8b", 1)])
def test_presets_fit_80gb_at_their_micro_batch(preset, micro):
    cfg = compose([f"experiment={preset}", "launcher.gpu_mem_gb=80"])
    assert cfg.micro_batch == micro
    mp.refuse_unfit(cfg, loss_path="chunked")  # no error
    assert mp.plan(cfg, loss_path="chunked").total < 80e9


def test_the_cpu_default_and_gpu_mem_0_are_never_refused():
    mp.refuse_unfit(compose([]), loss_path="full")
    mp.refuse_unfit(compose(["train.max_completion_length=100000", "train.prompts_per_step=64"]), "full")
    mp.refuse_unfit(compose(["experiment=paper_qwen3_8b", "train.prompts_per_step=32",
                             "train.micro_batch=16", "launcher.gpu_mem_gb=0"]), "chunked")


def test_a_folder_without_vocab_size_is_one_line(tmp_path):
    conf = {k: v for k, v in SHAPE.items() if k != "vocab_size"}
    (tmp_path / "config.json").write_text(json.dumps(conf))
    cfg = compose([f"model.path={tmp_path}", "launcher.gpus_per_node=1"])
    for call in (lambda: mp.plan(cfg), lambda: mp.refuse_unfit(cfg)):
        with pytest.raises(ConfigError) as err:
            call()
        assert "\n" not in str(err.value) and "has no vocab_size" in str(err.value)


def test_the_command_prints_every_part(capsys):
    mp.main(["experiment=paper_qwen3_8b", "launcher.gpu_mem_gb=80"])
    out = capsys.readouterr().out
    for name in ("weights", "LoRA + optimiser", "activations", "logits", "probe", "generation", "eval",
                 "total", "gradient checkpointing"):
        assert name in out, name


# Qwen3-1.7B's config: h 2048, 16 heads x 128, 8 KV heads, i 6144, 28 layers; the preset's lengths
Q_H, Q_NH, Q_KV, Q_D, Q_I, Q_L, Q_V = 2048, 16, 8, 128, 6144, 28, 151936
ROWS, STUDENT, TEACHER, C = 2, 512 + 2048, 21000 + 2048, 2048


def sdpa_mask(rows: int, length: int) -> int:
    """bool [rows, 1, L, L] + an additive bf16 copy + its copy padded to 16 (transformers sdpa_mask)."""
    padded = -(-length // 16) * 16
    return rows * (length * length + 2 * padded * padded * 2)


def layer_transient(rows: int, length: int) -> int:
    return rows * length * (4 * Q_H + 3 * Q_I) * 2  # one layer of a no-grad bf16 forward


def test_peft_casts_and_gradient_checkpointing_by_hand():
    """peft's bf16 input casts (peft lora/layer.py:1100, one saved copy of each adapted linear's
    input: 5h + H d + i values per token and layer) and the checkpointed activations (each layer's
    input + one layer's full activations)."""
    p = mp.plan(compose(["experiment=paper_qwen3_1p7b"]), loss_path="chunked")
    cast = 5 * Q_H + Q_NH * Q_D + Q_I
    assert part(p, "peft input casts") == ROWS * STUDENT * 1 * cast * 2  # checkpointing: one layer at a time
    act = 10 * Q_H + 4 * Q_I + 3 * Q_NH * Q_D + 5 * Q_KV * Q_D
    assert part(p, "activations") == ROWS * STUDENT * 2 * (Q_L * Q_H + act)
    no_ckpt = mp.plan(compose(["experiment=paper_qwen3_1p7b", "train.gradient_checkpointing=false"]),
                      loss_path="chunked")
    assert part(no_ckpt, "peft input casts") == ROWS * STUDENT * Q_L * cast * 2
    assert part(no_ckpt, "activations") == ROWS * STUDENT * Q_L * act * 2
    assert part(no_ckpt, "peft input casts") / part(no_ckpt, "activations") > 0.3  # the review's +33%
    cpu = mp.plan(compose(["experiment=paper_qwen3_1p7b", "launcher.gpus_per_node=0"]), loss_path="chunked")
    assert not any(x.name == "peft input casts" for x in cpu.parts)  # fp32 on a CPU: no cast


def test_the_sdpa_mask_and_the_probes_rows_by_hand():
    """The teacher forward carries an L x L mask per padded row on SDPA (~2.6 GB at 23k tokens), none
    on flash attention; the probe's forward holds len(exposures) x rows rows at probe.max_rows=0 and
    max_rows // rows exposures of rows otherwise (the presets: one exposure, micro_batch rows)."""
    assert 2.6e9 < sdpa_mask(1, TEACHER) < 2.7e9
    preset = mp.plan(compose(["experiment=paper_qwen3_1p7b"]), loss_path="chunked")
    assert part(preset, "teacher forward") == layer_transient(ROWS, TEACHER) + sdpa_mask(ROWS, TEACHER)
    hidden = 6 * ROWS * C * Q_H * 4  # student + 5 exposures' final hidden states, fp32
    assert part(preset, "probe") == hidden + layer_transient(ROWS, TEACHER) + sdpa_mask(ROWS, TEACHER)
    all_five = mp.plan(compose(["experiment=paper_qwen3_1p7b", "probe.max_rows=0"]), loss_path="chunked")
    assert part(all_five, "probe") == hidden + layer_transient(10, TEACHER) + sdpa_mask(10, TEACHER)
    assert "10 teacher rows a forward" in next(x.note for x in all_five.parts if x.name == "probe")
    flash = mp.plan(compose(["experiment=paper_qwen3_1p7b", "probe.max_rows=0",
                             "model.attn_implementation=flash_attention_2"]), loss_path="chunked")
    assert part(flash, "teacher forward") == layer_transient(ROWS, TEACHER)
    assert part(flash, "probe") == hidden + layer_transient(10, TEACHER)


def test_the_atesd_progress_cache_by_hand():
    """val_accuracy's HF generate holds one batch: min(progress_batch_size, val_size x samples) rows."""
    kv = 2 * Q_L * Q_KV * Q_D  # keys and values of every layer, per token
    length = 512 + 2048  # student prompt + controller.progress_max_new_tokens
    hf = ["experiment=paper_qwen3_1p7b", "method=atesd", "train.generation=hf"]
    p = mp.plan(compose(hf), loss_path="chunked")
    assert part(p, "progress") == 64 * length * kv * 2 + 4 * 64 * Q_V * 4  # 64 of 64 x 4 sequences
    small = mp.plan(compose([*hf, "task.val_size=6", "controller.progress_samples=2"]), loss_path="chunked")
    assert part(small, "progress") == 12 * length * kv * 2 + 4 * 12 * Q_V * 4
    assert "progress" not in {x.phase for x in mp.plan(compose(["experiment=paper_qwen3_1p7b"])).parts}
    # colocated vLLM rollouts: the progress is sampled on that engine, awake: its share of the GPU
    on_vllm = mp.plan(compose(["experiment=paper_qwen3_1p7b", "method=atesd", "launcher.gpu_mem_gb=80"]),
                      loss_path="chunked")
    assert part(on_vllm, "progress") == 0.3 * 80e9 == part(on_vllm, "generation")


def test_vllm_shares_and_the_budget_are_the_physical_gpu_when_there_is_one(monkeypatch):
    cfg = compose(["experiment=paper_qwen3_8b", "launcher.gpu_mem_gb=80"])
    login = mp.plan(cfg, loss_path="chunked")
    assert part(login, "eval") == 0.5 * 80e9 and login.budget_gb == 80
    assert "launcher.gpu_mem_gb: no GPU here" in mp.render(login, cfg)
    monkeypatch.setattr(parts, "physical_gpu_gb", lambda: 141.0)  # an H200, read with torch.cuda
    h200 = mp.plan(cfg, loss_path="chunked")
    assert part(h200, "eval") == 0.5 * 141e9 and part(h200, "generation") == 0.3 * 141e9
    assert h200.budget_gb == 141 and h200.total > 80e9  # 8B weights + 70.5 GB: fits the H200, not 80
    mp.refuse_unfit(cfg, loss_path="chunked")  # held against the GPU it runs on
    assert "per GPU of 141 GB: this machine's GPU" in mp.render(h200, cfg)
    monkeypatch.setattr(parts, "physical_gpu_gb", lambda: 32.0)  # a 32 GB card under an 80 GB budget
    with pytest.raises(ConfigError, match="does not fit this machine.s GPU of 32 GB"):
        mp.refuse_unfit(cfg, loss_path="chunked")


def test_the_physical_gpu_is_read_without_opening_a_cuda_context(monkeypatch, tmp_path):
    """Planning asks nvidia-smi for the first visible GPU (a CUDA context in a sweep's planning
    process would hold memory on GPU 0 for the whole sweep); no driver: None."""
    import shutil
    import subprocess

    asked = []

    def smi(cmd, **_):
        asked.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="143771\n", stderr="")

    driver = tmp_path / "version"
    assert parts.nvidia_smi_gb(driver) is None  # no /proc/driver/nvidia here
    driver.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06\n")
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(subprocess, "run", smi)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,4")
    assert parts.nvidia_smi_gb(driver) == pytest.approx(143771 * 2**20 / 1e9)  # an H200's 140.4 GiB
    assert asked[0][:3] == ["nvidia-smi", "-i", "3"]


def test_full_fine_tuning_on_cuda_counts_fp32_masters_and_teacher_copy(folder):
    """TRL builds the base teacher in the student's dtype (sdft_trainer.py:526): the fp32 master."""
    p = mp.plan(cfg_of(folder, "launcher.gpus_per_node=1", "model.lora.r=0"), loss_path="chunked")
    params = mp.model_shape(cfg_of(folder)).params()
    assert part(p, "weights") == params * 4 and part(p, "teacher copy") == params * 4
    assert part(p, "LoRA + optimiser") == params * 12  # fp32 grad + Adam m, v


def test_the_lora_export_before_a_vllm_evaluation_by_hand(folder):
    p = mp.plan(cfg_of(folder, "launcher.gpus_per_node=1", "model.lora.r=8", "eval.backend=auto"),
                loss_path="chunked")
    linears = H * NH * D + 2 * H * KV * D + NH * D * H + 3 * H * IM  # q, k, v, o, gate, up, down
    export = next(x for x in p.parts if x.name.startswith("export"))
    assert export.bytes == L * linears * 2 + 2 * 4 * H * IM and export.phase == "export"
    hf = mp.plan(cfg_of(folder, "launcher.gpus_per_node=1", "model.lora.r=8", "eval.backend=hf"),
                 loss_path="chunked")
    assert not any(x.name.startswith("export") for x in hf.parts)


def test_a_point_that_does_not_fit_names_the_settings_that_make_it_fit():
    cfg = compose(["experiment=paper_qwen3_8b", "launcher.gpus_per_node=1", "train.prompts_per_step=32",
                   "train.micro_batch=4", "probe.max_rows=0"])
    assert mp.fixes(cfg, "chunked") == ["probe.max_rows=4", "model.attn_implementation=flash_attention_2"]
    with pytest.raises(ConfigError) as err:
        mp.refuse_unfit(cfg, loss_path="chunked")
    assert "probe.max_rows=4 fits or model.attn_implementation=flash_attention_2 fits" in str(err.value)
    for fix in mp.fixes(cfg, "chunked"):
        mp.refuse_unfit(compose([*cfg_overrides_of(cfg), fix]), loss_path="chunked")
    out = mp.render(mp.plan(cfg, loss_path="chunked"), cfg)
    assert "does NOT fit 80 GB" in out and "fits with: probe.max_rows=4 | model.attn" in out


def cfg_overrides_of(cfg) -> list[str]:
    return ["experiment=paper_qwen3_8b", "launcher.gpus_per_node=1", "train.prompts_per_step=32",
            f"train.micro_batch={cfg.train.micro_batch}", f"probe.max_rows={cfg.probe.max_rows}"]


@pytest.mark.parametrize("preset", ["paper_qwen3_1p7b", "paper_qwen3_4b", "paper_qwen3_8b"])
def test_presets_fit_80gb_with_every_gpu_term_and_atesd(preset):
    for method in ("opsd", "atesd"):
        cfg = compose([f"experiment={preset}", f"method={method}", "launcher.gpu_mem_gb=80"])
        assert mp.plan(cfg, loss_path="chunked").total < 80e9
