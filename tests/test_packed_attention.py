"""Packed (padding-free) rows give the same loss and gradient as the padded batch.

python -m pytest -q tests/test_packed_attention.py

A random tiny Qwen3 on the CPU; the batch is shaped like the trainers': left-padded prompts of
different lengths + right-padded completions of different lengths. The OPSD loss (harness/losses/
chunked.py, JSD beta 0.5) from the final hidden states of the padded batch
(harness/losses/hidden_states.py final_hidden, the trainers' path) equals the one from one packed
row (harness/models/packing.py packed_final_hidden: position_ids restart per sequence, no mask),
on SDPA and eager (the kernels this machine has; flash kernels read the same position_ids). A
packed row without position_ids lets each sequence attend to the previous ones: the test's control.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from harness.losses.chunked import DivergenceSpec, chunked_divergence
from harness.losses.hidden_states import final_hidden, final_norm, lm_head
from harness.models.packing import pack, packed_final_hidden, packs, unpack

V, C = 97, 6  # vocabulary, completion columns
PROMPTS = [[5, 6, 7], [8, 9, 10, 11, 12], [13, 14]]  # student prompts (left-padded)
COMPLETIONS = [[20, 21, 22, 23, 24, 25], [30, 31, 32], [40, 41, 42, 43]]  # right-padded to C


def model_of(attn: str) -> Qwen3ForCausalLM:
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         max_position_embeddings=64, tie_word_embeddings=True)
    config._attn_implementation = attn
    return Qwen3ForCausalLM(config).eval()


def batch(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids_B_L, mask_B_L, completion mask_B_C): [left pad | prompt | completion | right pad]."""
    width = max(map(len, prompts))
    ids, mask, cmask = [], [], []
    for p, c in zip(prompts, COMPLETIONS):
        pad_l, pad_r = width - len(p), C - len(c)
        ids.append([0] * pad_l + p + c + [0] * pad_r)
        mask.append([0] * pad_l + [1] * (len(p) + len(c)) + [0] * pad_r)
        cmask.append([1] * len(c) + [0] * pad_r)
    return torch.tensor(ids), torch.tensor(mask), torch.tensor(cmask).bool()


def opsd_loss(model, hidden) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, d loss / d embeddings): the student on PROMPTS, the teacher (no grad) on longer
    prompts (a reference prefix before each), JSD over the completion tokens."""
    s_ids, s_mask, cmask = batch(PROMPTS)
    t_ids, t_mask, _ = batch([[50 + i] * (4 + 3 * i) + p for i, p in enumerate(PROMPTS)])
    model.zero_grad()
    h_s = hidden(model, s_ids, s_mask, C)[cmask]
    with torch.no_grad():
        h_t = hidden(model, t_ids, t_mask, C)[cmask]
    spec = DivergenceSpec(beta=0.5, block=8)
    loss, _ = chunked_divergence(h_s, h_t, s_ids[:, -C:][cmask], lm_head(model), spec)
    loss.backward()
    return loss.detach(), model.model.embed_tokens.weight.grad.clone()


def packed(model, ids, mask, c_len):
    return packed_final_hidden(model, final_norm(model), ids, mask, c_len)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_rows_give_the_padded_batchs_loss_and_gradient(attn):
    model = model_of(attn)
    loss_pad, grad_pad = opsd_loss(model, final_hidden)
    loss_packed, grad_packed = opsd_loss(model, packed)
    assert loss_pad > 0
    torch.testing.assert_close(loss_packed, loss_pad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad_packed, grad_pad, rtol=1e-4, atol=1e-7)


def test_without_position_ids_the_sequences_mix():
    """The control: the same packed row with default positions attends across sequences."""
    model = model_of("sdpa")
    ids, mask, _ = batch(PROMPTS)
    p = pack(ids, mask)
    with torch.no_grad():
        right = model(input_ids=p.input_ids_1_N, position_ids=p.position_ids_1_N, use_cache=False).logits
        mixed = model(input_ids=p.input_ids_1_N, use_cache=False).logits
        padded = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    torch.testing.assert_close(unpack(right, p)[mask.bool()], padded[mask.bool()], rtol=1e-4, atol=1e-5)
    assert (unpack(mixed, p)[mask.bool()] - padded[mask.bool()]).abs().max() > 1e-2


def test_pack_layout_and_refusals():
    ids, mask, _ = batch(PROMPTS)
    p = pack(ids, mask)
    lengths = [len(a) + len(b) for a, b in zip(PROMPTS, COMPLETIONS)]
    assert p.input_ids_1_N.shape == (1, sum(lengths))
    assert p.position_ids_1_N[0].tolist() == [i for n in lengths for i in range(n)]
    assert p.input_ids_1_N[0].tolist() == [t for a, b in zip(PROMPTS, COMPLETIONS) for t in a + b]
    with pytest.raises(ValueError, match="padding between"):
        pack(torch.ones(1, 4, dtype=torch.long), torch.tensor([[1, 0, 1, 1]]))
    for attn, packed_here in [("flash_attention_2", True), ("kernels-community/flash-attn2", True),
                              ("sdpa", False), ("eager", False)]:
        assert packs(SimpleNamespace(config=SimpleNamespace(_attn_implementation=attn))) is packed_here


def test_auto_falls_back_to_sdpa_when_the_flash_kernel_cannot_load(tmp_path, monkeypatch, capsys):
    """model.attn_implementation=auto with a flash package that cannot serve (here: none at all)
    loads with SDPA and says so; an explicit flash_attention_2 fails as asked."""
    from harness.config.model import ModelConfig
    from harness.models import tiny

    tok = tiny.build_tokenizer()
    tiny.save(tiny.build_model(tok, tiny.TinyModelSpec(hidden_size=32, num_layers=1, num_heads=2,
                                                       num_kv_heads=1, intermediate_size=64), seed=0),
              tok, tmp_path)
    monkeypatch.setattr(tiny, "resolve", lambda choice, device: "flash_attention_2")
    model, _ = tiny.load(tmp_path, ModelConfig(attn_implementation="auto"))
    assert model.config._attn_implementation == "sdpa"
    assert "flash_attention_2 failed to load" in capsys.readouterr().out
    with pytest.raises(ImportError):
        tiny.load(tmp_path, ModelConfig(attn_implementation="flash_attention_2"))


def test_final_hidden_runs_packed_where_packs_says_so_with_the_padded_result(monkeypatch):
    """The trainers' final_hidden takes the packed path when packs(model) (flash kernels; forced
    here on SDPA, whose block-diagonal mask is the same contract): same hidden states."""
    import harness.losses.hidden_states as hs

    model = model_of("sdpa")
    ids_B_L, mask_B_L, _ = batch(PROMPTS)
    padded = final_hidden(model, ids_B_L, mask_B_L, C)
    calls: list[int] = []
    real = hs.packed_final_hidden

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hs, "packs", lambda m: True)
    monkeypatch.setattr(hs, "packed_final_hidden", counted)
    packed = final_hidden(model, ids_B_L, mask_B_L, C)
    keep = mask_B_L[:, -C - 1:-1].bool()  # positions whose next token is real
    assert calls == [1]
    assert torch.allclose(packed[keep], padded[keep], atol=1e-5)
