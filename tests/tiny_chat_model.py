"""A tiny random Qwen3 with a small BPE tokenizer and a Qwen3-style chat template, for tests.

python -c "import sys; sys.path.insert(0, 'tests'); import tiny_chat_model as t; print(t.build('/tmp/tcm'))"

The tokenizer is a byte-level BPE trained on the math fixture texts (so token
boundaries fall inside words and numbers, as with Qwen3's own), wrapped as a
PreTrainedTokenizerFast whose jinja chat template honours `enable_thinking` the way
Qwen3's does (thinking off: an empty <think></think> block after the generation prompt).
"""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "math"
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]

# Qwen3's template, reduced to user/assistant turns and the enable_thinking switch.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)


def fixture_texts() -> list[str]:
    texts = []
    for path in sorted(FIXTURES.iterdir()):
        rows = ([json.loads(x) for x in path.read_text().splitlines() if x.strip()]
                if path.suffix == ".jsonl" else json.loads(path.read_text()))
        texts += [str(v) for row in rows for v in row.values()]
    return texts + ["Please reason step by step, and put your final answer within \\boxed{}.",
                    "Here is a reference solution to this problem:", "user", "assistant"]


def build_tokenizer(vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(fixture_texts(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", padding_side="left")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(path: str | Path, seed: int = 0) -> Path:
    """Save a tiny random Qwen3 + the BPE tokenizer at path (a model.path folder)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = build_tokenizer()
    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         head_dim=16, max_position_embeddings=1024, tie_word_embeddings=True,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                         bos_token_id=None)
    model = Qwen3ForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return Path(path)
