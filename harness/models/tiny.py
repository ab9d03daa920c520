"""Tiny Qwen3-architecture model and word-level tokenizer for the embedded default; loading any model.

python -m harness.models.tiny /tmp/tiny   # builds an untrained model + tokenizer and loads it back

Both are saved with `save_pretrained` and loaded only through
`AutoModelForCausalLM/AutoTokenizer.from_pretrained(path)`: the path a real Qwen3
checkpoint takes, so nothing downstream knows which one it got.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from harness.compute.device import choose
from harness.config.model import LoraConfig, ModelConfig, is_hub_id
from harness.models.attention import resolve
from harness.tasks.synthetic import MAX_MODULUS, OPS

if TYPE_CHECKING:
    from peft import LoraConfig as PeftLoraConfig

SPECIAL = ["<pad>", "<eos>", "<unk>"]
# Every word the prompt templates and solutions use; one token each.
WORDS = [*OPS, "=", ";", "ans", "ref", ":", "|", "?", "problem", "solution", "Q", "R"]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level tokenizer: one token per integer 0..MAX_MODULUS-1 and per symbol."""
    vocab_words = SPECIAL + WORDS + [str(i) for i in range(MAX_MODULUS)]
    vocab = {w: i for i, w in enumerate(vocab_words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # WordPiece's decoder joins words with spaces, which is exactly the inverse here.
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                   unk_token="<unk>", padding_side="left")


@dataclass
class TinyModelSpec:
    """Shape of the tiny Qwen3; the default is about 1M parameters."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 512
    max_positions: int = 256
    vocab_size: int | None = None  # None: the tokenizer's size; wider like Qwen3's (151,936) is allowed
    head_dim: int | None = None  # None: hidden_size // num_heads


def build_model(tokenizer: PreTrainedTokenizerFast, spec: TinyModelSpec, seed: int) -> PreTrainedModel:
    torch.manual_seed(seed)
    if spec.vocab_size is not None and spec.vocab_size < len(tokenizer):
        raise ValueError(f"vocab_size={spec.vocab_size} is smaller than the tokenizer "
                         f"({len(tokenizer)} tokens)")
    config = Qwen3Config(
        vocab_size=spec.vocab_size or len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_kv_heads,
        head_dim=spec.head_dim or spec.hidden_size // spec.num_heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, path: str | Path) -> None:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def load(path: str | Path, model_cfg: ModelConfig | None = None
         ) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Load any causal LM + tokenizer from a local folder or a hub id (org/name), on the
    device and in the dtype harness/compute/device.py picks for model_cfg (None: its defaults),
    with the attention kernel model.attn_implementation resolves to (attention_of)."""
    m = model_cfg or ModelConfig()
    if not is_hub_id(str(path)) and not (Path(path) / "config.json").is_file():
        raise FileNotFoundError(f"model path {str(path)!r} has no config.json (not a saved model)")
    precision = choose(m.dtype, lora=m.lora.r > 0)
    attn = attention_of(m.attn_implementation, precision.device)
    try:
        model = from_pretrained_on(path, m, precision, attn)
    except (ImportError, OSError, ValueError, RuntimeError) as err:
        if m.attn_implementation != "auto" or attn == "sdpa":
            raise
        # auto found a flash package that cannot serve here (kernels without its hub kernel cached,
        # offline; a flash_attn build for another torch): SDPA, said once
        print(f"model.attn_implementation=auto: {attn} failed to load ({type(err).__name__}: "
              f"{str(err).splitlines()[0][:200]}); using sdpa")
        model = from_pretrained_on(path, m, precision, "sdpa")
    if line := precision.note():  # pure bf16 full fine-tuning: said once, at load
        print(line)
    tokenizer = AutoTokenizer.from_pretrained(str(path), padding_side="left",
                                              trust_remote_code=m.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def from_pretrained_on(path: str | Path, m: ModelConfig, precision, attn: str) -> PreTrainedModel:
    """from_pretrained straight onto the run's device: on CUDA the weights load to this process's
    GPU (torch.cuda.current_device(), set per rank by harness/compute/distributed.py) instead of
    through host memory (review E). A one-device map adds no accelerate hooks (transformers
    modeling_utils.py:4455-4457) and sets no hf_device_map (only accelerate's dispatch_model does,
    big_modeling.py:516); it is dropped should another version set it, since the Trainer reads a
    model with one as placed by its user (trainer.py:459-465 is_model_parallel) and TRL and peft
    branch on it. The model is then what .to(device) made, as before."""
    on_cuda = str(precision.device).startswith("cuda")
    where = {"device_map": {"": torch.cuda.current_device()}} if on_cuda else {}
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=precision.weights_dtype,
                                                 trust_remote_code=m.trust_remote_code,
                                                 attn_implementation=attn, **where)
    model.__dict__.pop("hf_device_map", None)
    return model.to(precision.device)


def attention_of(choice: str, device: str) -> str:
    """model.attn_implementation resolved (harness/models/attention.py resolve): auto takes
    flash_attention_2 on CUDA where flash_attn (or kernels) is importable, sdpa otherwise. FA2
    needs fp16/bf16 compute and CUDA. The loss path still passes padded rows with their mask
    (flash kernels unpad them, no L x L mask); packing rows padding-free is
    harness/models/packing.py (tests/test_packed_attention.py), not yet called by the trainers."""
    return resolve(choice, device)


def lora_adapter_config(lora: LoraConfig) -> PeftLoraConfig | None:
    """peft's LoraConfig for model.lora (None when r = 0: all weights train)."""
    if lora.r == 0:
        return None
    from peft import LoraConfig as PeftLoraConfig  # only runs with LoRA need peft

    return PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha if lora.alpha is not None else 2 * lora.r,
                          lora_dropout=lora.dropout, target_modules=list(lora.target_modules),
                          task_type="CAUSAL_LM")


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny-qwen3"
    tok = build_tokenizer()
    save(build_model(tok, TinyModelSpec(), seed=0), tok, out)
    m, t = load(out)
    print(f"saved and reloaded {out}: {count_params(m):,} parameters, vocab {len(t)}")
