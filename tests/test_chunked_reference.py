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

from harness.config.settings import compose
from harness.losses.hidden_states import final_hidden, lm_head
from harness.models.tiny import load
from harness.prompts.templates import Prompts
from harness.sources.learning_progress import reference_logp, target_logp_sum
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


def test_reference_logp_equals_the_batch_wide_formula_at_real_vocab(real_vocab):
    """Two problems with references of ~1,000 tokens: the same sum as full logits of each sequence."""
    cfg, model, tok = real_vocab
    probs = problems(2, 300)
    prompt_ids = tok([f"Solve: {p.problem}" for p in probs], add_special_tokens=False)["input_ids"]
    total, count = reference_logp(lambda ids, attn, c: final_hidden(model, ids, attn, c), lm_head(model),
                                  torch.device("cpu"), tok, cfg, probs, prompt_ids)
    assert count > 2 * 700, count  # a thousand reference tokens each
    want, n = 0.0, 0
    targets = tok([Prompts(cfg, tok).completion(p.solution) for p in probs],
                  add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        for p_ids, t_ids in zip(prompt_ids, targets, strict=True):
            ids = torch.tensor([p_ids + t_ids])
            logp = torch.log_softmax(model(input_ids=ids).logits.float()[0, :-1], -1)
            want += logp[len(p_ids) - 1:].gather(-1, ids[0, len(p_ids):, None]).sum().item()
            n += len(t_ids)
    assert count == n and total == pytest.approx(want, rel=1e-4)


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
