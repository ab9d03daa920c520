"""python -m pytest -q tests/test_packed_attention.py   # packed and padded rows give the same loss

Padding-free (packed) rows for a flash-attention forward. The trainers' batches are left-padded
prompts + right-padded completions; the teacher rows of a probe forward are padded to the longest
(r = 1) context, so with 20k-token references most of a padded teacher batch can be padding.
`pack` drops every padded position and lays the rows end to end in one row of N tokens whose
position_ids restart at 0 for each sequence; the model then runs with no attention mask:

- flash kernels (flash_attention_2/3, kernels-community/flash-attn*) read the sequence starts from
  position_ids (transformers modeling_flash_attention_utils.py) and run varlen: no padded token is
  computed, no L x L mask exists;
- SDPA and eager build a block-diagonal [1, 1, N, N] mask from the same position_ids (transformers
  masking_utils.py:873-881 find_packed_sequence_indices, only with attention_mask=None and no
  cache: use_cache=False), exact but larger than the padded masks: `packs` is therefore True on
  flash kernels only, and the CPU test checks the SDPA / eager path, which is the same contract.

RoPE makes attention depend on position differences only, so restarting positions at 0 (the padded
forward counts the left padding) changes the logits by rounding alone.

Wired: harness/losses/hidden_states.py final_hidden (every OPSD student and teacher forward, the
probe, reference_logp) calls `packed_final_hidden`, which has its contract (h_B_C_H at the
positions predicting the last c_len tokens), when `packs(model)`: on flash kernels only, so the
CPU path is unchanged; tests/test_packed_attention.py forces it on SDPA to check the wiring.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.models.attention import is_flash


@dataclass(frozen=True)
class Packed:
    """One packed row and the way back to the padded layout."""

    input_ids_1_N: torch.Tensor
    position_ids_1_N: torch.Tensor
    keep_B_L: torch.Tensor  # bool: the padded layout's real tokens, in row-major order = packed order


def pack(ids_B_L: torch.Tensor, mask_B_L: torch.Tensor) -> Packed:
    """The real tokens of each row, end to end, positions restarting at 0 per row. A row's real
    tokens must be contiguous (left and/or right padding only, as the trainers' batches are)."""
    keep_B_L = mask_B_L.bool()
    lengths_B = keep_B_L.sum(-1)
    first_B = keep_B_L.int().argmax(-1)
    last_B = keep_B_L.shape[1] - 1 - keep_B_L.flip(-1).int().argmax(-1)
    if bool(((last_B - first_B + 1 != lengths_B) & (lengths_B > 0)).any()):
        raise ValueError("pack: a row has padding between its tokens")
    starts_B = torch.cumsum(lengths_B, 0) - lengths_B
    n = int(lengths_B.sum())
    row_N = torch.repeat_interleave(torch.arange(len(lengths_B), device=ids_B_L.device), lengths_B)
    pos_N = torch.arange(n, device=ids_B_L.device) - starts_B[row_N]
    return Packed(ids_B_L[keep_B_L][None], pos_N[None], keep_B_L)


def unpack(x_1_N_H: torch.Tensor, packed: Packed) -> torch.Tensor:
    """x_B_L_H in the padded layout, zeros at padded positions."""
    keep_B_L = packed.keep_B_L
    out = x_1_N_H.new_zeros((*keep_B_L.shape, x_1_N_H.shape[-1]))
    out[keep_B_L] = x_1_N_H[0]
    return out


def packs(model: torch.nn.Module) -> bool:
    """Pack this model's rows: its attention is a flash kernel (see the module docstring)."""
    config = getattr(model, "config", None)
    return is_flash(str(getattr(config, "_attn_implementation", None) or ""))


def packed_final_hidden(model: torch.nn.Module, norm: torch.nn.Module, ids_B_L: torch.Tensor,
                        mask_B_L: torch.Tensor, c_len: int) -> torch.Tensor:
    """h_B_C_H: the final norm's output (the LM head's input) at the positions predicting the last
    c_len tokens of each padded row, from one packed forward (zeros where the padded layout has
    padding there). `norm` is the decoder's last norm (harness/losses/hidden_states.py final_norm)."""
    packed = pack(ids_B_L, mask_B_L)
    captured: list[torch.Tensor] = []
    handle = norm.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        model(input_ids=packed.input_ids_1_N, position_ids=packed.position_ids_1_N, attention_mask=None,
              use_cache=False, logits_to_keep=1)
    finally:
        handle.remove()
    return unpack(captured[-1], packed)[:, -c_len - 1:-1]
