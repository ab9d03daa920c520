"""A tiny random Qwen3 with a small BPE tokenizer and a Qwen3-style chat template, for tests.

python -c "import sys; sys.path.insert(0, 'tests'); import tiny_chat_model as t; print(t.build('/tmp/tcm'))"

The builder lives in harness/models/qwen3_shaped.py (the benchmarks and make gpu-check use it too);
this module keeps the tests' names for it.
"""

from __future__ import annotations

from harness.models.qwen3_shaped import (
    CHAT_TEMPLATE,
    FIXTURES,
    QWEN3_VOCAB,
    build,
    build_tokenizer,
    fixture_texts,
)

__all__ = ["CHAT_TEMPLATE", "FIXTURES", "QWEN3_VOCAB", "build", "build_tokenizer", "fixture_texts"]
