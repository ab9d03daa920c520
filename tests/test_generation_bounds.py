"""Generation bounds at real sizes (issue 19): budgets, one vLLM engine, presets.
(drift-free LoRA sync: tests/test_lora_sync.py)

python -m pytest -q tests/test_generation_bounds.py

vLLM cannot run here (no CUDA, not installed): where its engine would run, a recorder
stands in (`harness.compute.vllm_backend._vllm`, TRL's `llm` attribute); everything around it
(weight export, TRL's own sync_weights, the evaluation, the process group) is real.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from types import SimpleNamespace

import pytest
from tiny_chat_model import FIXTURES, build

import harness.compute.vllm_backend as vb
import harness.evaluation.suites as eval_suites
from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.config.train import TrainConfig

MATH = ["task=math", "task.val_size=1",
        f"task.train_data.path={FIXTURES / 'openthoughts_math_30k_opsd.jsonl'}",
        f"task.eval_data.0.path={FIXTURES / 'aime_2024.jsonl'}",
        f"task.eval_data.1.path={FIXTURES / 'aime_2025.json'}",
        f"task.eval_data.2.path={FIXTURES / 'aime_2025.json'}", "task.eval_data.2.id=id"]


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tiny_chat"))


def train_cfg(**knobs) -> TrainConfig:
    """A TrainConfig as a GPU node with vllm would hold it (set after the range checks)."""
    t = TrainConfig()
    for k, v in knobs.items():
        setattr(t, k, v)
    return t


# ---- rollouts: train.generation, top_k, the colocated engine's context and sleep ---------------
def test_rollout_args_always_carry_top_k_and_vllm_only_where_chosen():
    assert vb.rollout_args(train_cfg(top_k=20), cuda=True, installed=True) == {"top_k": 20}  # hf
    auto = train_cfg(generation="auto", top_k=20, max_completion_length=1024, vllm_sleep=True)
    assert vb.rollout_args(auto, cuda=False, installed=True) == {"top_k": 20}
    assert vb.rollout_args(auto, cuda=True, installed=False) == {"top_k": 20}
    assert vb.rollout_args(auto, cuda=True, installed=True) == {
        "top_k": 20, "use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3,
        "vllm_max_model_length": vb.ROLLOUT_PROMPT_TOKENS + 1024, "vllm_enable_sleep_mode": True}
    asleep = vb.rollout_args(train_cfg(generation="vllm", vllm_sleep=False), cuda=True, prompt_tokens=300)
    assert (asleep["vllm_max_model_length"], asleep["vllm_enable_sleep_mode"]) == (300 + 64, False)
    server = vb.rollout_args(train_cfg(generation="vllm", vllm_mode="server"), cuda=True)
    assert "vllm_max_model_length" not in server and "vllm_enable_sleep_mode" not in server
    with pytest.raises(ConfigError, match=r"^train.generation='vllm' is invalid: vLLM needs CUDA"):
        vb.rollout_args(train_cfg(generation="vllm"), cuda=False)


def test_sdft_and_grpo_configs_take_the_same_rollout_keys(tmp_path):
    """antisd / sdar train on TRL's GRPOTrainer: its config names every key as SDFTConfig does."""
    from trl import GRPOConfig
    from trl.experimental.sdft import SDFTConfig

    args = vb.rollout_args(train_cfg(generation="auto", top_k=20), cuda=True, installed=True)
    for make in (SDFTConfig, GRPOConfig):
        c = make(output_dir=str(tmp_path), use_cpu=True, **args)
        assert {k: getattr(c, k) for k in args} == args


# ---- evaluation budgets -------------------------------------------------------------------------
def test_an_hf_evaluation_past_its_budget_is_one_line_before_training():
    ok = compose(["profile=smoke"])
    vb.check_eval_budget(ok, cuda=False, installed=False)  # the embedded default: 64 tokens
    long = compose(["profile=smoke", "eval.max_new_tokens=38912"])
    with pytest.raises(ConfigError, match=r"^eval.max_new_tokens=38912 is invalid with "
                                          r"eval.backend='auto' resolving to hf") as err:
        vb.check_eval_budget(long, cuda=False, installed=True)
    assert "\n" not in str(err.value) and "pip install -e '.[vllm]'" in str(err.value)
    vb.check_eval_budget(long, cuda=True, installed=True)  # auto -> vllm: served
    vb.check_eval_budget(compose(["profile=smoke", "eval.max_new_tokens=38912", "eval.force_hf=true"]),
                         cuda=False, installed=False)
    with pytest.raises(ConfigError, match=r"eval.backend='hf'"):
        vb.check_eval_budget(compose(["profile=smoke", "eval.max_new_tokens=38912", "eval.backend=hf"]),
                             cuda=True, installed=True)


def test_the_evaluate_cli_refuses_the_budget_before_loading(capsys):
    from harness.evaluate import main

    with pytest.raises(SystemExit):
        main(["--model", "/nonexistent", "profile=smoke", "eval.max_new_tokens=5000"])
    assert "eval.hf_max_new_tokens=4096" in capsys.readouterr().err


def test_val_accuracy_samples_with_its_own_budget(chat_model_dir):
    """ATESD's progress measure: controller.progress_max_new_tokens, never eval.max_new_tokens;
    its default is the old eval default, so the embedded default's numbers do not move."""
    from harness.models.tiny import load
    from harness.sources.learning_progress import val_accuracy
    from harness.tasks.datasets import TaskData

    atesd = compose(["method=atesd"])
    assert atesd.controller.progress_max_new_tokens == atesd.eval.max_new_tokens == 64
    cfg = compose([*MATH, "method=atesd", f"model.path={chat_model_dir}", "eval.max_new_tokens=999",
                   "controller.progress_max_new_tokens=3", "controller.progress_samples=2"])
    model, tok = load(chat_model_dir, cfg.model)
    asked, generate = [], model.generate

    def recording_generate(**kw):  # the real generate, its arguments kept
        asked.append((kw["max_new_tokens"], kw["input_ids"].shape[0]))
        return generate(**kw)

    model.generate = recording_generate
    share = val_accuracy(model, tok, cfg, TaskData(cfg.task).validation)
    assert 0.0 <= share <= 1.0 and asked == [(3, 2)]


# ---- one vLLM engine for every suite ------------------------------------------------------------
vb_calls = {"free": 0}  # free_device_memory calls, counted through the real one


class RecordedLLM:
    """vllm.LLM's surface the harness uses, recording; completions 'x' for every prompt."""

    made: list[RecordedLLM] = []

    def __init__(self, model: str, **kwargs) -> None:
        from pathlib import Path

        self.folder_had_weights = (Path(model) / "config.json").is_file()
        self.freed_before = vb_calls["free"]
        self.kwargs, self.generated = kwargs, []
        RecordedLLM.made.append(self)

    def generate(self, prompts, params, use_tqdm=False):
        self.generated.append([p["prompt_token_ids"] for p in prompts])
        return [SimpleNamespace(outputs=[SimpleNamespace(text="x")] * sp.n) for sp in params]


def recorded_params(**kw):
    return SimpleNamespace(**kw)


def test_one_engine_samples_every_suite_and_memory_is_freed_around_it(chat_model_dir, monkeypatch):
    from harness.models.tiny import load

    free = vb.free_device_memory

    def counted_free() -> None:
        vb_calls["free"] += 1
        free()

    RecordedLLM.made.clear()
    vb_calls["free"] = 0
    monkeypatch.setattr(vb, "_vllm", lambda: (RecordedLLM, recorded_params))
    monkeypatch.setattr(vb, "free_device_memory", counted_free)
    monkeypatch.setattr(eval_suites, "eval_backend", lambda choice: "vllm")  # as on a GPU node
    cfg = compose([*MATH, f"model.path={chat_model_dir}", "eval.k=2"])
    model, tok = load(chat_model_dir, cfg.model)
    summary, samples = eval_suites.evaluate(model, tok, cfg)
    (llm,) = RecordedLLM.made  # one engine, three suites
    assert len(llm.generated) == len(summary["suites"]) == 3 and summary["backend"] == "vllm"
    assert llm.folder_had_weights and llm.freed_before == 1  # freed before LLM() started
    assert (llm.kwargs["generation_config"], llm.kwargs["seed"]) == ("vllm", cfg.eval.seed)
    assert vb_calls["free"] == 2 and len(samples) == 2 * sum(r["num_problems"] for r in
                                                             summary["suites"].values())
    gone = weakref.ref(llm)
    RecordedLLM.made.clear()
    del llm
    gc.collect()
    assert gone() is None  # nothing of the evaluation still holds the engine


# ---- the process group's timeout -----------------------------------------------------------------
WORKER = """
import os, sys
from harness.compute.distributed import init_process_group
import torch, torch.distributed as dist
init_process_group(timeout_min=float(sys.argv[1]))
backend = dist.distributed_c10d._get_default_group()._get_backend(torch.device("cpu"))
print(dist.get_backend(), backend.options._timeout.total_seconds())
dist.barrier()
dist.destroy_process_group()
"""


def test_the_process_group_waits_launcher_timeout_min(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, "37"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r),
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                                   "CUDA_VISIBLE_DEVICES": ""})
             for r in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert [o.split() for o in outs] == [["gloo", str(37 * 60.0)]] * 2


# ---- presets at the public settings --------------------------------------------------------------
@pytest.mark.parametrize("size,tokens,micro", [("1p7b", 2048, 2), ("4b", 1024, 2), ("8b", 2048, 1)])
def test_presets_sample_as_the_public_scripts(size, tokens, micro):
    cfg = compose([f"experiment=paper_qwen3_{size}", "launcher=slurm", "method=atesd"])
    t = cfg.train
    assert (t.top_p, t.top_k, t.temperature, t.generation) == (0.95, 20, 1.1, "auto")
    assert (t.max_completion_length, t.micro_batch) == (tokens, micro)
    assert cfg.controller.progress_max_new_tokens == tokens < cfg.eval.max_new_tokens
    assert cfg.task.max_teacher_tokens >= 20_000
    with pytest.raises(ConfigError, match="eval.backend"):  # this machine: no vLLM, no CUDA
        vb.check_eval_budget(cfg, cuda=False, installed=False)
    vb.check_eval_budget(cfg, cuda=True, installed=True)  # a GPU node with the vllm extra


def test_the_preset_budget_keeps_a_long_references_boxed_answer_at_r1(chat_model_dir):
    from harness.models.tiny import load
    from harness.prompts.templates import Prompts
    from harness.tasks.problem import Problem

    cfg = compose(["experiment=paper_qwen3_4b", f"model.path={chat_model_dir}", *MATH[2:]])
    _, tok = load(chat_model_dir, cfg.model)
    answer = "\\boxed{14}"
    reference = "Then $2 + 12 = 14$. " * 1500 + f"So the value is {answer}."
    ref_tokens = len(tok(reference, add_special_tokens=False)["input_ids"])
    assert 4096 < ref_tokens < 20_000  # long enough that the old 4,096 budget cut it
    problem = Problem(id="long", problem="What is $2 + 3 \\cdot 4$?", solution=reference, answer="14")
    ids, cut = Prompts(cfg, tok).teacher_ids(problem, 1.0)
    assert not cut and answer in tok.decode(ids)
