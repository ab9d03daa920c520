"""GPU-only paths as far as a CPU runs them: vLLM's choice and errors, its weight export, eval.thinking.

python -m pytest -q tests/test_gpu_paths.py

vLLM itself cannot run here (no CUDA, not installed): these tests check what decides
whether it runs (harness/compute/vllm_backend.py), that the decision fails in one line before
a launch, that TRL accepts the keys train.generation maps to, that the HF sampler is
what a CPU evaluation uses, and that the weights handed to vLLM are the model's
(adapters merged) while the model itself is left as it was.
"""

from __future__ import annotations

import pytest
import torch
from lora_models import weighted_lora_model
from tiny_chat_model import FIXTURES, build
from trl.experimental.sdft import SDFTConfig

from harness.compute.vllm_backend import eval_backend, export_weights, rollout_args, vllm_installed
from harness.config.schema import ConfigError
from harness.config.settings import compose
from harness.config.train import TrainConfig
from harness.prompts.templates import Prompts, eval_prompts_for

no_vllm = pytest.mark.skipif(vllm_installed(), reason="checks the error of a machine without vllm")


@no_vllm
@pytest.mark.parametrize("override", ["train.generation=vllm", "eval.backend=vllm"])
def test_asking_for_vllm_without_it_is_one_config_line(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{key}='vllm' is invalid: vllm is not installed") as err:
        compose(["profile=smoke", override])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("override", ["train.generation=sglang", "train.vllm_mode=remote",
                                      "train.vllm_gpu_memory=0", "eval.backend=tpu",
                                      "eval.vllm_gpu_memory=1.5"])
def test_bad_vllm_knobs_are_refused(override):
    with pytest.raises(ConfigError, match=rf"^{override.split('=')[0]}="):
        compose(["profile=smoke", override])


def vllm_train(**knobs) -> TrainConfig:
    """A TrainConfig asking for vLLM as a GPU node with vllm would hold it (the range
    checks run at construction, where this machine has no vllm: set afterwards)."""
    t = TrainConfig()
    t.generation = "vllm"
    for k, v in knobs.items():
        setattr(t, k, v)
    return t


def test_train_generation_maps_onto_trls_vllm_keys(tmp_path):
    assert rollout_args(TrainConfig(), cuda=True) == {"top_k": 0}  # hf: TRL's own generate
    args = rollout_args(vllm_train(vllm_mode="server", vllm_gpu_memory=0.4), cuda=True)
    assert args == {"top_k": 0, "use_vllm": True, "vllm_mode": "server", "vllm_gpu_memory_utilization": 0.4}
    sdft = SDFTConfig(output_dir=str(tmp_path), use_cpu=True, **args)  # TRL knows every key
    assert (sdft.use_vllm, sdft.vllm_mode, sdft.vllm_gpu_memory_utilization) == (True, "server", 0.4)
    with pytest.raises(ConfigError, match=r"^train.generation='vllm' is invalid: vLLM needs CUDA"):
        rollout_args(vllm_train(), cuda=False)


def test_eval_backend_auto_takes_vllm_only_with_cuda_and_the_package():
    for cuda in (False, True):
        for installed in (False, True):
            want = "vllm" if cuda and installed else "hf"
            assert eval_backend("auto", cuda, installed) == want
            assert eval_backend("hf", cuda, installed) == "hf"
    assert eval_backend("vllm", True, True) == "vllm"
    with pytest.raises(ConfigError, match=r"^eval.backend='vllm' is invalid: CUDA is missing"):
        eval_backend("vllm", cuda=False, installed=True)
    with pytest.raises(ConfigError, match=r"the vllm package is missing"):
        eval_backend("vllm", cuda=True, installed=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU machine's choice")
def test_a_cpu_evaluation_samples_with_hf(smoke_base):
    from harness.evaluation.suites import evaluate
    from harness.models.tiny import load

    cfg = compose(["profile=smoke", "eval.k=1"])
    model, tok = load(smoke_base, cfg.model)
    summary, samples = evaluate(model, tok, cfg, ["easy_k3"])
    assert summary["backend"] == "hf" and len(samples) == 4


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tiny_chat"))


def logits_of(model, ids_B_T: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids_B_T).logits


def test_lora_export_is_the_merged_model_and_leaves_the_adapters_in_place(chat_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(chat_model_dir)
    model = weighted_lora_model(chat_model_dir, torch.float32)
    ids_B_T = tok(["What is 1 + 2?"], return_tensors="pt")["input_ids"]
    want = logits_of(model, ids_B_T)
    export_weights(model, tok, tmp_path / "export")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "export", dtype=torch.float32)
    assert not any("lora" in k or "base_layer" in k for k in plain.state_dict())
    assert torch.allclose(logits_of(plain, ids_B_T), want, atol=1e-4)
    untouched = AutoModelForCausalLM.from_pretrained(chat_model_dir, dtype=torch.float32)
    assert not torch.allclose(logits_of(untouched, ids_B_T), want, atol=1e-3)  # the adapters matter
    assert torch.equal(logits_of(model, ids_B_T), want)  # unmerged again: the same model
    exported_tok = AutoTokenizer.from_pretrained(tmp_path / "export")
    assert exported_tok("1 + 2")["input_ids"] == tok("1 + 2")["input_ids"]


@pytest.mark.parametrize("thinking, think_block", [("null", True), ("false", True), ("true", False)])
def test_eval_thinking_sets_the_evaluation_prompts_only(chat_model_dir, thinking, think_block):
    from harness.models.tiny import load
    from harness.tasks.datasets import TaskData

    cfg = compose(["task=math", f"model.path={chat_model_dir}", "profile=smoke", "task.val_size=1",
                   f"task.train_data.path={FIXTURES / 'openthoughts_math_30k_opsd.jsonl'}",
                   f"task.eval_data.0.path={FIXTURES / 'aime_2024.jsonl'}",
                   f"task.eval_data.1.path={FIXTURES / 'aime_2025.json'}",
                   f"task.eval_data.2.path={FIXTURES / 'aime_2025.json'}", "task.eval_data.2.id=id",
                   f"eval.thinking={thinking}"])
    _, tok = load(chat_model_dir)
    problems = TaskData(cfg.task).suite("aime24")
    prompts = Prompts(cfg, tok)
    asked = eval_prompts_for(problems, cfg, tok, None)
    # Thinking off: Qwen3's template closes an empty <think> block after the generation prompt.
    assert all(p.endswith("<think>\n\n</think>\n\n") == think_block for p in asked)
    assert all(problem.problem in p for problem, p in zip(problems, asked))
    # The student trains as before and a teacher-exposure evaluation keeps the teacher's setting.
    assert all(prompts.student(p).endswith("</think>\n\n") for p in problems)
    assert eval_prompts_for(problems, cfg, tok, 0.5) == [prompts.teacher(p, 0.5) for p in problems]


def test_expandable_segments_is_dropped_only_for_vllm_sleep_mode_rollouts():
    """vLLM's sleep mode (CuMemAllocator) refuses PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
    (review C2): a run with colocated vLLM rollouts in sleep mode drops it, keeping the rest."""
    from harness.compute.vllm_backend import drop_expandable_segments

    train = compose(["experiment=paper_qwen3_1p7b"]).train
    env = {"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:512,expandable_segments:True"}
    assert drop_expandable_segments(train, cuda=True, installed=True, env=env)
    assert env == {"PYTORCH_CUDA_ALLOC_CONF": "max_split_size_mb:512"}
    alone = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    assert drop_expandable_segments(train, cuda=True, installed=True, env=alone) and alone == {}
    for kept_when in ({"cuda": False, "installed": True}, {"cuda": True, "installed": False}):
        env = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
        assert not drop_expandable_segments(train, env=env, **kept_when) and env  # HF rollouts: kept
    no_sleep = compose(["experiment=paper_qwen3_1p7b", "train.vllm_sleep=false"]).train
    env = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}
    assert not drop_expandable_segments(no_sleep, cuda=True, installed=True, env=env) and env
