"""A random Qwen3-shaped model with a small BPE tokenizer: real vocabulary and lengths, tiny width.

python -m harness.models.qwen3_shaped /tmp/q3 --vocab-size 151936 --hidden-size 64 --layers 2

Nothing can be downloaded on the development machines, yet every vocabulary- or length-sized
cost (logits, log-softmax, the probe, the memory plan) must be exercised at Qwen3's real
vocabulary (151,936). `build` saves such a model with `save_pretrained`, so it loads through
the same `from_pretrained` path as a checkpoint. The model may be wider than its tokenizer,
as Qwen3's own checkpoints are (151,936 rows for ~151,669 tokens): ids past the tokenizer
decode to nothing. The tokenizer is a byte-level BPE trained on math texts (the test
fixtures when present), wrapped with a Qwen3-style chat template that honours
`enable_thinking` (thinking off: an empty <think></think> block after the generation prompt).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

QWEN3_VOCAB = 151_936
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "math"
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
PROMPT_TEXTS = ["Please reason step by step, and put your final answer within \\boxed{}.",
                "Here is a reference solution to this problem:", "user", "assistant",
                "Let x be a real number such that x^2 + 3x - 4 = 0. Find the sum of all such x.",
                "The answer is \\boxed{42}. Therefore 12 + 30 = 42, and 6 * 7 = 42."]


def fixture_texts(folder: Path = FIXTURES) -> list[str]:
    """Every string value of the math fixture files (json / jsonl), plus the prompt phrases."""
    texts = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        rows = ([json.loads(x) for x in path.read_text().splitlines() if x.strip()]
                if path.suffix == ".jsonl" else json.loads(path.read_text()))
        texts += [str(v) for row in rows for v in row.values()]
    return texts + PROMPT_TEXTS


def long_reference(solution: str, tok, n_tokens: int) -> str:
    """solution with worked lines before its last paragraph (its boxed answer stays last) until
    the whole takes about n_tokens tokens of `tok`: the teacher context of a real OPSD run on the
    short fixture references (make gpu-check, tests/test_cluster_rehearsal.py)."""
    head, _, last = solution.rpartition("\n\n")
    line = "We check the previous step again carefully, and the value stays the same."
    per_line = max(1, len(tok(line + "\n\n")["input_ids"]))
    filler = "\n\n".join([line] * max(1, (n_tokens - len(tok(solution)["input_ids"])) // per_line))
    return f"{head}\n\n{filler}\n\n{last}"


def build_tokenizer(vocab_size: int = 400, texts: list[str] | None = None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts if texts is not None else fixture_texts(), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", padding_side="left")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(path: str | Path, seed: int = 0, vocab_size: int | None = None, hidden_size: int = 32,
          layers: int = 2, heads: int = 2, kv_heads: int = 1, head_dim: int = 16,
          intermediate_size: int = 64, max_positions: int = 4096) -> Path:
    """Save a random Qwen3 + the BPE tokenizer at path (a model.path folder). vocab_size None:
    as wide as the tokenizer; QWEN3_VOCAB: Qwen3's own width. Built by harness/models/tiny.py's
    build_model, the embedded default's own builder (tied embeddings)."""
    from harness.models.tiny import TinyModelSpec, build_model, save

    tok = build_tokenizer()
    spec = TinyModelSpec(hidden_size, layers, heads, kv_heads, intermediate_size, max_positions,
                         vocab_size=vocab_size, head_dim=head_dim)
    save(build_model(tok, spec, seed), tok, path)
    return Path(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--vocab-size", type=int, default=QWEN3_VOCAB)
    ap.add_argument("--hidden-size", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(build(a.path, a.seed, a.vocab_size, a.hidden_size, a.layers, intermediate_size=2 * a.hidden_size))


if __name__ == "__main__":
    main()
