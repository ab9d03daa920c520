"""The reference log-probability (ATESD's ref_nll progress and the paper reward's teacher term)
at Qwen3's vocabulary with references of thousands of tokens: chunked, row by row, exact.

python -m pytest -q tests/test_chunked_reference.py

harness/sources/learning_progress.py reference_logp used to take full-vocabulary fp32 logits of
controller.progress_batch_size sequences at once: at 151,936 and 20k-token teacher contexts
no GPU holds that (review D/E). It now takes one row's final hidden states and the target
tokens' log-probs in blocks through the LM head.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tiny_chat_model import QWEN3_VOCAB, build
from torch.utils._python_dispatch import TorchDispatchMode

from harness.config.settings import compose
from harness.losses.chunked import block_tokens
from harness.losses.hidden_states import final_hidden, lm_head
from harness.models.tiny import load
from harness.prompts.templates import Prompts
from harness.sources.learning_progress import context_of, reference_logp, target_logp_sum
from harness.tasks.problem import Problem

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def real_vocab(tmp_path_factory):
    path = build(tmp_path_factory.mktemp("qwen3_refs"), vocab_size=QWEN3_VOCAB, hidden_size=32)
    cfg = compose(["task=math", f"model.path={path}", "profile=smoke", "method=atesd"])
    model, tok = load(path, cfg.model)
    return cfg, model.eval(), tok


def problems(n: int, words: int) -> list[Problem]:
    text = " ".join(["We add the two numbers and check the sum again."] * (words // 10))
    return [Problem(id=f"p{i}", problem=f"What is {i}+{i}?", solution=f"{text} \\boxed{{{2 * i}}}",
                    answer=str(2 * i)) for i in range(n)]


def test_target_logp_in_blocks_equals_a_full_log_softmax():
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(16, QWEN3_VOCAB, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(QWEN3_VOCAB, 16, generator=g))
    h, ids = torch.randn(300, 16, generator=g), torch.randint(0, QWEN3_VOCAB, (300,), generator=g)
    with torch.no_grad():
        want = torch.log_softmax(head(h).double(), -1).gather(-1, ids[:, None]).sum().item()
    assert target_logp_sum(h, ids, head, block=37) == pytest.approx(want, rel=1e-5)


def brute_logp(model, p_ids: list[int], t_ids: list[int]) -> torch.Tensor:
    """logp_T of each target token from the full logits of the whole sequence (the old way)."""
    ids = torch.tensor([p_ids + t_ids])
    with torch.no_grad():
        logp_L_V = torch.log_softmax(model(input_ids=ids).logits.float()[0, :-1], -1)
    return logp_L_V[len(p_ids) - 1:].gather(-1, ids[0, len(p_ids):, None]).squeeze(-1)


def targets(cfg, tok, probs: list[Problem]) -> list[list[int]]:
    texts = [Prompts(cfg, tok).completion(p.solution) for p in probs]
    return tok(texts, add_special_tokens=False)["input_ids"]


def hidden_of(model):
    return lambda ids, attn, c: final_hidden(model, ids, attn, c)


def test_reference_logp_equals_the_batch_wide_formula_at_real_vocab(real_vocab):
    """Two problems with references of ~1,000 tokens: the same sum as full logits of each sequence."""
    cfg, model, tok = real_vocab
    probs = problems(2, 300)
    prompt_ids = tok([f"Solve: {p.problem}" for p in probs], add_special_tokens=False)["input_ids"]
    total, count = reference_logp(hidden_of(model), lm_head(model), torch.device("cpu"), tok, cfg, probs,
                                  prompt_ids, context_of(model))
    assert count > 2 * 700, count  # a thousand reference tokens each
    brute = [brute_logp(model, p, t) for p, t in zip(prompt_ids, targets(cfg, tok, probs), strict=True)]
    assert count == sum(len(b) for b in brute)
    assert total == pytest.approx(sum(b.sum().item() for b in brute), rel=1e-4)


def test_a_row_is_cut_at_the_models_context(real_vocab):
    """max_positions: the reference tokens that fit are scored as before, the rest not at all."""
    cfg, model, tok = real_vocab
    probs = problems(1, 100)
    prompt_ids = tok([f"Solve: {p.problem}" for p in probs], add_special_tokens=False)["input_ids"]
    assert context_of(model) == 4096  # tests/tiny_chat_model.py's max_positions
    fit = 25
    cap = len(prompt_ids[0]) + fit
    total, count = reference_logp(hidden_of(model), lm_head(model), torch.device("cpu"), tok, cfg, probs,
                                  prompt_ids, cap)
    want = brute_logp(model, prompt_ids[0], targets(cfg, tok, probs)[0])[:fit].sum().item()
    assert count == fit and total == pytest.approx(want, rel=1e-5)
    assert reference_logp(hidden_of(model), lm_head(model), torch.device("cpu"), tok, cfg, probs, prompt_ids,
                          len(prompt_ids[0])) == (0.0, 0)  # the prompt fills the context: nothing scored


class LargestVocabTensor(TorchDispatchMode):
    """Records the largest tensor an op returns whose last dimension is the vocabulary."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab, self.largest = vocab, (0, ())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.dim() and t.shape[-1] == self.vocab:
                self.largest = max(self.largest, (t.numel(), tuple(t.shape)))
        return out


def test_reference_logp_never_builds_a_rows_x_tokens_x_vocab_tensor(real_vocab):
    """Every op's output during reference_logp of 3 references of ~2,000 tokens at 151,936: the
    largest vocabulary-wide tensor is one block of loss.chunk_mb (110 x V), not [rows x T x V]
    (the old batch-wide logits: 3 x 2,000 x 151,936 x 4 B = 3.6 GB)."""
    cfg, model, tok = real_vocab
    probs = problems(3, 600)
    prompt_ids = tok([f"Solve: {p.problem}" for p in probs], add_special_tokens=False)["input_ids"]
    spy = LargestVocabTensor(QWEN3_VOCAB)
    with spy:
        _, count = reference_logp(hidden_of(model), lm_head(model), torch.device("cpu"), tok, cfg, probs,
                                  prompt_ids, context_of(model))
    assert count > 3 * 1500, count  # thousands of reference tokens
    numel, shape = spy.largest
    assert numel <= block_tokens(QWEN3_VOCAB, cfg.loss.chunk_mb) * QWEN3_VOCAB, shape
    assert numel * 10 < (count // 3) * QWEN3_VOCAB, shape  # far below even one row's logits


PEAK = textwrap.dedent("""
    import resource, sys, torch
    sys.path.insert(0, "tests")
    from test_chunked_reference import problems
    from harness.config.settings import compose
    from harness.losses.hidden_states import final_hidden, lm_head
    from harness.models.tiny import load
    from harness.sources.learning_progress import reference_logp
    path = sys.argv[1]
    cfg = compose(["task=math", f"model.path={path}", "profile=smoke", "method=atesd"])
    model, tok = load(path, cfg.model)
    model.eval()
    probs = problems(4, 1500)
    prompt_ids = tok([f"Solve: {p.problem}" for p in probs], add_special_tokens=False)["input_ids"]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total, count = reference_logp(lambda i, a, c: final_hidden(model, i, a, c), lm_head(model),
                                  torch.device("cpu"), tok, cfg, probs, prompt_ids)
    print(count, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
""")


@pytest.mark.slow  # ~20 s (4 x 5,000 tokens at 151,936): make test-slow
def test_reference_logp_never_holds_a_logits_tensor_of_the_references(real_vocab, tmp_path):
    """4 references of ~5,000 tokens at 151,936: full fp32 logits of them would be 12 GB; the
    chunked path's peak growth stays under a quarter of one row's logits (3 GB)."""
    cfg, model, tok = real_vocab
    path = cfg.model.path
    out = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    count, grown = map(int, out.stdout.split()[-2:])
    one_row_logits = (count // 4) * QWEN3_VOCAB * 4
    assert count > 4 * 3000, count
    assert grown < 0.25 * one_row_logits, (grown, one_row_logits)
