"""python -m harness.memory.plan model.path=Qwen/Qwen3-8B   # the plan reads the model's shape here

Model shapes for the memory plan (harness/memory/plan.py): a local folder's config.json, or
QWEN3_SHAPES for the hub ids the presets use (nothing can be downloaded at planning time); the
tiny model from model.*. Parameter, LoRA, activation and KV-cache counts per shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.config.model import is_hub_id
from harness.config.schema import ConfigError, RunConfig

ACT_H, ACT_I, ACT_Q, ACT_KV = 10, 4, 3, 5  # activation values per token and layer (docstring)


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool

    def params(self) -> int:
        h, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        layer = h * q + 2 * h * kv + q * h + 3 * h * self.intermediate + 2 * h + 2 * self.head_dim
        head = 0 if self.tied else self.vocab * h
        return self.vocab * h + head + self.layers * layer + h

    def module_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) of every Qwen3 linear a LoRA adapter can target."""
        h, i = self.hidden, self.intermediate
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def lora_params(self, r: int, targets: list[str]) -> int:
        dims = self.module_dims()
        return self.layers * sum(r * (dims[t][0] + dims[t][1]) for t in targets if t in dims)

    def act_values(self) -> int:
        """Activation values kept per token and layer for the backward (no checkpointing)."""
        return (ACT_H * self.hidden + ACT_I * self.intermediate + ACT_Q * self.heads * self.head_dim
                + ACT_KV * self.kv_heads * self.head_dim)

    def kv_values(self) -> int:
        """KV-cache values per token (keys and values of every layer)."""
        return 2 * self.layers * self.kv_heads * self.head_dim


# Public config.json of the presets' checkpoints (hub ids; verified against published configs).
QWEN3_SHAPES = {
    "Qwen/Qwen3-1.7B": Shape(28, 2048, 6144, 16, 8, 128, 151936, True),
    "Qwen/Qwen3-4B": Shape(36, 2560, 9728, 32, 8, 128, 151936, True),
    "Qwen/Qwen3-8B": Shape(36, 4096, 12288, 32, 8, 128, 151936, False),
}


def shape_from_config(folder: Path) -> Shape:
    conf = json.loads((folder / "config.json").read_text())
    conf = conf.get("text_config", conf)
    if "vocab_size" not in conf:
        raise ConfigError(f"model.path={str(folder)!r} is invalid: its config.json has no vocab_size")
    h, heads = conf["hidden_size"], conf["num_attention_heads"]
    return Shape(conf["num_hidden_layers"], h, conf["intermediate_size"], heads,
                 conf.get("num_key_value_heads", heads), conf.get("head_dim") or h // heads,
                 conf["vocab_size"], bool(conf.get("tie_word_embeddings", True)))


def model_shape(cfg: RunConfig) -> Shape:
    m = cfg.model
    if m.path is None:  # the tiny model harness/models/tiny.py builds
        from harness.models.tiny import build_tokenizer

        return Shape(m.num_layers, m.hidden_size, m.intermediate_size, m.num_heads, m.num_kv_heads,
                     m.hidden_size // m.num_heads, len(build_tokenizer()), True)
    if is_hub_id(m.path):
        if m.path not in QWEN3_SHAPES:
            raise ConfigError(f"model.path={m.path!r} is invalid for the memory plan: a hub id it has "
                              f"no shape for (one of {', '.join(QWEN3_SHAPES)}, or a local folder)")
        return QWEN3_SHAPES[m.path]
    return shape_from_config(Path(m.path))
