"""LoRA weight sync to the colocated vLLM engine without drift (issue 19): the bf16 base stays bit
identical over syncs, TRL's own merge / unmerge sync drifts it (the control), nothing is replaced
without vLLM rollouts or LoRA.

python -m pytest -q tests/test_lora_sync.py

vLLM cannot run here: TRL's `llm` attribute is a recorder; TRL's own sync_weights is real.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from lora_models import weighted_lora_model
from tiny_chat_model import build

import harness.compute.vllm_backend as vb


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tiny_chat"))


class RecordingEngine:
    """TRL's colocated `llm` as sync_weights reaches it: load_weights records copies."""

    def __init__(self) -> None:
        self.loads: list[dict[str, torch.Tensor]] = []
        model = SimpleNamespace(load_weights=self.load_weights)
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(
            driver_worker=SimpleNamespace(model_runner=SimpleNamespace(model=model))))

    def load_weights(self, weights) -> None:
        for name, tensor in weights:
            self.loads[-1][name] = tensor.clone()

    def reset_prefix_cache(self) -> None:
        self.loads.append({})  # the end of one sync: the next one records afresh


def trl_generation(model):
    """TRL 1.16's VLLMGeneration around `model`, its engine a recorder (vLLM is not here)."""
    from accelerate import Accelerator
    from trl.distributed import DistributedBackend
    from trl.generation.vllm_generation import VLLMGeneration

    gen = object.__new__(VLLMGeneration)  # its __init__ would start vLLM
    accelerator = Accelerator(cpu=True)
    gen.model, gen.accelerator, gen._dist = model, accelerator, DistributedBackend(accelerator)
    gen.mode, gen.enable_sleep_mode, gen.llm = "colocate", False, RecordingEngine()
    gen.llm.loads.append({})
    return gen


def base_weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}


def test_drift_free_sync_leaves_the_bf16_base_bit_identical(chat_model_dir):
    model = weighted_lora_model(chat_model_dir, torch.bfloat16)
    before = base_weights(model)
    gen = trl_generation(model)
    assert vb.install_drift_free_sync(SimpleNamespace(vllm_generation=gen))
    for _ in range(5):
        gen.sync_weights()  # TRL's own method: only the parameter walk is ours
    assert all(torch.equal(v, before[k]) for k, v in base_weights(model).items())
    sent = gen.llm.loads[-2]  # the last complete sync
    plain = {k.removeprefix("base_model.model.").replace(".base_layer", "") for k in before}
    assert set(sent) <= plain and not any("lora" in k for k in sent)
    q = "model.layers.0.self_attn.q_proj"
    layer = model.get_submodule(f"base_model.model.{q}")
    delta = (layer.lora_B["default"].weight.float() @ layer.lora_A["default"].weight.float()
             ) * layer.scaling["default"]
    want = (layer.base_layer.weight.float() + delta).to(torch.bfloat16)
    assert torch.equal(sent[f"{q}.weight"], want) and not torch.equal(want, layer.base_layer.weight)
    emb = "model.embed_tokens.weight"
    assert torch.equal(sent[emb], before[f"base_model.model.{emb}"])


def test_trls_own_sync_drifts_the_base_which_is_why_it_is_replaced(chat_model_dir):
    """The control: TRL 1.16's merge / unmerge cycle rounds the bf16 base (TRL #6688)."""
    model = weighted_lora_model(chat_model_dir, torch.bfloat16)
    before = base_weights(model)
    gen = trl_generation(model)
    for _ in range(5):
        gen.sync_weights()
    assert not all(torch.equal(v, before[k]) for k, v in base_weights(model).items())


def test_nothing_to_replace_without_vllm_rollouts_or_lora(chat_model_dir):
    from transformers import AutoModelForCausalLM

    assert not vb.install_drift_free_sync(SimpleNamespace())
    plain = AutoModelForCausalLM.from_pretrained(chat_model_dir)
    assert not vb.install_drift_free_sync(SimpleNamespace(vllm_generation=trl_generation(plain)))
