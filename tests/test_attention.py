"""model.attn_implementation: the kernel each device gets, and the memory plan's SDPA mask term.

python -m pytest -q tests/test_attention.py
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from harness.config.fields import ConfigError
from harness.config.settings import compose
from harness.memory import plan as mp
from harness.models.tiny import attention_of, load


def test_auto_is_flash_attention_only_on_cuda_with_the_package(monkeypatch):
    real = importlib.util.find_spec

    def spec_with(fa2: object):
        return lambda name: fa2 if name == "flash_attn" else real(name)

    monkeypatch.setattr(importlib.util, "find_spec", spec_with(object()))
    assert attention_of("auto", "cuda") == "flash_attention_2"
    assert attention_of("auto", "cpu") == "sdpa"
    monkeypatch.setattr(importlib.util, "find_spec", spec_with(None))
    assert attention_of("auto", "cuda") == "sdpa"
    assert attention_of("eager", "cuda") == "eager"


def test_eager_and_sdpa_give_the_same_logits_on_a_padded_batch(smoke_base):
    ids = torch.tensor([[0, 0, 5, 6, 7], [5, 6, 7, 8, 9]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    out = {}
    for impl in ("sdpa", "eager"):
        model, _ = load(smoke_base, compose(["profile=smoke", f"model.attn_implementation={impl}"]).model)
        assert model.config._attn_implementation == impl
        with torch.no_grad():
            out[impl] = model(input_ids=ids, attention_mask=mask).logits[mask.bool()]
    torch.testing.assert_close(out["sdpa"], out["eager"], rtol=1e-4, atol=1e-5)


def test_flash_attention_drops_the_plans_mask_and_bad_values_are_one_line():
    sdpa = mp.plan(compose(["experiment=paper_qwen3_1p7b"]), loss_path="chunked")
    fa2 = mp.plan(compose(["experiment=paper_qwen3_1p7b", "model.attn_implementation=flash_attention_2"]),
                  loss_path="chunked")
    t = {p.name: p.bytes for p in sdpa.parts}
    t2 = {p.name: p.bytes for p in fa2.parts}
    assert t["teacher forward"] - t2["teacher forward"] > 5e9  # 2 rows x ~2.66 GB of masks
    with pytest.raises(ConfigError, match="model.attn_implementation"):
        compose(["model.attn_implementation=flash"])
