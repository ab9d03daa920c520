"""Final hidden states of a causal LM, without the full-vocabulary logits of every position.

python -m pytest -q tests/test_chunked.py tests/test_real_vocab.py    # used by both trainers

`final_hidden(model, ids, mask, c_len)` runs the model (through its DDP / peft wrappers, so
gradient sync and adapters work as in a normal forward) with `logits_to_keep=1` - the head
then computes one position per row - and takes the final norm's output, i.e. the LM head's
input, at the c_len positions predicting the completion. The divergence is computed from
these by harness/losses/chunked.py. `row_blocks` splits rows so a no-grad pass over a whole
generation batch holds one micro-batch of activations at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from harness.models.packing import packed_final_hidden, packs


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain transformers model under DDP (.module) and peft (get_base_model)."""
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def lm_head(model: torch.nn.Module) -> torch.nn.Module:
    return unwrap(model).get_output_embeddings()


def final_norm(model: torch.nn.Module) -> torch.nn.Module | None:
    """The decoder's last norm (Qwen3, Llama, Mistral: model.model.norm); None if not found."""
    base = unwrap(model)
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    return getattr(decoder, "norm", None)


def final_hidden(model: torch.nn.Module, ids_B_L: torch.Tensor, mask_B_L: torch.Tensor,
                 c_len: int) -> torch.Tensor:
    """h_B_C_H: the LM head's input at the positions predicting the last c_len tokens. On a flash
    kernel the rows run packed, padding-free (harness/models/packing.py): no padded token is
    computed, which matters for a probe's teacher rows padded to the r = 1 context."""
    norm = final_norm(model)
    if norm is not None and packs(unwrap(model)):
        return packed_final_hidden(model, norm, ids_B_L, mask_B_L, c_len)
    kwargs = {"input_ids": ids_B_L, "attention_mask": mask_B_L, "use_cache": False, "logits_to_keep": 1}
    if norm is None:  # another architecture: hidden_states[-1] is the normed output in HF models
        out = model(**kwargs, output_hidden_states=True)
        return out.hidden_states[-1][:, -c_len - 1:-1]
    captured: list[torch.Tensor] = []
    handle = norm.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        model(**kwargs)
    finally:
        handle.remove()
    return captured[-1][:, -c_len - 1:-1]


def row_blocks(n_rows: int, block: int) -> Iterator[slice]:
    for start in range(0, n_rows, max(1, block)):
        yield slice(start, min(start + block, n_rows))
