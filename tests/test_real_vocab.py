"""The training path at Qwen3's real vocabulary (151,936) on a CPU: tiny width, real-size costs.

python -m pytest -q tests/test_real_vocab.py

A random Qwen3-shaped model with vocab_size=151936 (harness/models/qwen3_shaped.py) makes every
vocabulary-sized cost real: an OPSD step with the probe on, micro-batches, the GRPO-side
teacher, and the chunked divergence's memory, measured in a fresh process against the
batch-wide computation it replaces.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tiny_chat_model import FIXTURES, QWEN3_VOCAB, build

from harness.config.settings import compose_resolved
from harness.losses.chunked import COL, DivergenceSpec, block_tokens, chunked_divergence
from harness.losses.divergences import generalized_jsd, kl
from harness.runs.rundir import read_jsonl


@pytest.fixture(scope="module")
def real_vocab_model(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("qwen3_real_vocab"), vocab_size=QWEN3_VOCAB, hidden_size=32)


def math_run(model_dir: Path, results: Path, *extra: str) -> Path:
    from harness.run import run

    overrides = ["task=math", f"model.path={model_dir}", "profile=smoke", f"results={results}",
                 f"task.train_data.path={FIXTURES / 'openthoughts_math_30k_opsd.jsonl'}",
                 f"task.eval_data.0.path={FIXTURES / 'aime_2024.jsonl'}",
                 f"task.eval_data.1.path={FIXTURES / 'aime_2025.json'}",
                 f"task.eval_data.2.path={FIXTURES / 'aime_2024.jsonl'}", "task.eval_data.2.id=id",
                 "task.val_size=2",
                 "train.steps=2", "train.prompts_per_step=2", "train.max_completion_length=48",
                 "train.checkpoint_every=0", "eval.k=1", "eval.max_new_tokens=8", *extra]
    cfg, resolved = compose_resolved(overrides)
    run(cfg, resolved)
    return results / cfg.run_name


def test_opsd_steps_with_the_probe_at_real_vocab(real_vocab_model, tmp_path):
    """Two OPSD steps, one row per micro-batch, the probe at every exposure on both steps."""
    folder = math_run(real_vocab_model, tmp_path, "exposure=0.5", "probe.every=1", "train.micro_batch=1")
    rows = list(read_jsonl(folder / "metrics.jsonl"))
    train = [r for r in rows if r["kind"] == "train"]
    probe = [r for r in rows if r["kind"] == "probe"]
    assert [r["step"] for r in train] == [1, 2]
    assert all(math.isfinite(r[k]) for r in train for k in ("loss", "mismatch_kl_st", "teacher_entropy"))
    assert len(probe) == 2 * 5 and {r["probe_exposure"] for r in probe} == {0.0, 0.25, 0.5, 0.75, 1.0}
    # r = 0 is the student's own context and the frozen teacher equals it before the first update
    first_r0 = next(r for r in probe if r["step"] == 1 and r["probe_exposure"] == 0.0)
    assert abs(first_r0["mismatch_kl_st"]) < 1e-5 and abs(first_r0["mismatch_kl_ts"]) < 1e-5
    assert max(r["mismatch_kl_st"] for r in probe if r["step"] == 1) > 1e-4
    assert json.loads((folder / "status.json").read_text())["state"] == "done"


@pytest.mark.parametrize("method", ["sdar", "antisd"])
def test_grpo_side_teacher_at_real_vocab(real_vocab_model, tmp_path, method):
    """The GRPO-based losses' teacher statistics and SDAR term, in micro-batches of 4 rows."""
    folder = math_run(real_vocab_model, tmp_path, f"method={method}", "grpo.group_size=4",
                      "train.micro_batch=4", "probe.every=0")
    train = [r for r in read_jsonl(folder / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    key = "sdar_term" if method == "sdar" else "antisd_term"
    assert all(math.isfinite(r["mismatch_kl_st"]) and math.isfinite(r[key]) for r in train)


@pytest.mark.parametrize("source", ["target_mismatch", "per_problem"])
def test_new_sources_on_the_grpo_side_at_real_vocab(real_vocab_model, tmp_path, source):
    """The paths the new sources add, at 151,936 and real lengths: the GRPO-side trainer's own
    probe (target_mismatch reads it), per-problem exposures per row, micro-batches of 4 rows."""
    folder = math_run(real_vocab_model, tmp_path, f"source={source}", "loss=antisd", "grpo.group_size=4",
                      "train.micro_batch=4", "probe.every=1", "target_mismatch.hold=1")
    rows = read_jsonl(folder / "metrics.jsonl")
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    assert all(math.isfinite(r["mismatch_kl_st"]) and math.isfinite(r["exposure"]) for r in train)
    if source == "target_mismatch":
        probe = [r for r in rows if r["kind"] == "probe"]
        assert {r["step"] for r in probe} == {1, 2} and all(math.isfinite(r["mismatch_kl_st"]) for r in probe)
        assert [r["step"] for r in rows if r["kind"] == "controller"] == [1, 2]
    else:
        assert {r["step"] for r in rows if r["kind"] == "exposure"} == {1, 2}


def test_chunked_equals_batch_wide_at_real_vocab():
    """64 tokens at 151,936 (one block = 110 tokens at loss.chunk_mb=64; 16-token blocks here)."""
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(16, QWEN3_VOCAB, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(QWEN3_VOCAB, 16, generator=g))
    h_s = torch.randn(64, 16, generator=g, requires_grad=True)
    h_t, ids = torch.randn(64, 16, generator=g), torch.randint(0, QWEN3_VOCAB, (64,), generator=g)
    spec = DivergenceSpec(beta=0.5, temperature=1.1, block=16)
    loss, stats = chunked_divergence(h_s, h_t, ids, head, spec)
    z_s, z_t = head(h_s), head(h_t).detach()
    ref = generalized_jsd(z_t / 1.1, z_s / 1.1, 0.5).sum()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(stats[:, COL["mismatch_kl_st"]], kl(z_s.detach(), z_t), rtol=1e-4, atol=1e-5)
    (g_h,) = torch.autograd.grad(loss, (h_s,), retain_graph=False)
    torch.testing.assert_close(g_h, torch.autograd.grad(ref, (h_s,))[0], rtol=1e-4, atol=1e-6)
    assert block_tokens(QWEN3_VOCAB, 64.0) == 110


PEAK_SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    from harness.losses.chunked import DivergenceSpec, block_tokens, chunked_divergence
    from harness.losses.divergences import generalized_jsd
    torch.manual_seed(0)
    V, N, H = 151936, 1024, 16
    head = torch.nn.Linear(H, V, bias=False)
    h_s = torch.randn(N, H, requires_grad=True); h_t = torch.randn(N, H); ids = torch.randint(0, V, (N,))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.argv[1] == "chunked":
        spec = DivergenceSpec(beta=0.5, block=block_tokens(V, 64.0))
        loss, _ = chunked_divergence(h_s, h_t, ids, head, spec)
    else:
        loss = generalized_jsd(head(h_t).detach(), head(h_s), 0.5).sum()
    loss.backward()
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
""")


def test_chunked_never_holds_a_batch_wide_logits_tensor():
    """Peak memory growth of loss + backward over 1,024 tokens at 151,936, each way in a fresh
    process: the batch-wide path holds several [N x V] tensors (0.62 GB each), the chunked one
    stays under one of them."""
    def peak(way: str) -> int:
        out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, way], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parent.parent)
        return int(out.stdout.split()[-1])

    one_logits = 1024 * QWEN3_VOCAB * 4
    chunked, batch_wide = peak("chunked"), peak("batch_wide")
    assert batch_wide > 2 * one_logits, batch_wide
    assert chunked < 0.5 * one_logits, (chunked, batch_wide)
