"""Our chunked divergence against TRL 1.16's fused kernel, side by side at Qwen3's vocabulary.

python -m harness.bench --only kernel [--rounds 5] [--quick]

One loss + backward over N tokens x 151,936 from final hidden states, each way in turn in the
same process, rounds interleaved (these machines are noisy): loss.kernel=harness (our blocks,
the loss, its gradient and every statistic in one pass) and loss.kernel=trl (TRL's
trl.kernels.chunked_divergence for the loss and its gradient, here its torch fallback, plus our
gradient-free statistics pass). Informative, no target: on CUDA TRL's kernel is Triton
(make gpu-check times both there).
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from harness.bench.record import BenchArgs, Result
from harness.bench.timing import median
from harness.losses.chunked import DivergenceSpec, block_tokens, chunked_divergence

DEFAULT_ROUNDS = 5
VOCAB, HIDDEN, TOKENS, QUICK_TOKENS = 151936, 64, 256, 32


def one_step(kernel: str, head: torch.nn.Module, h_s: torch.Tensor, h_t: torch.Tensor,
             ids: torch.Tensor) -> tuple[float, float]:
    """(seconds, loss) of one loss + backward."""
    spec = DivergenceSpec(beta=0.5, temperature=1.1, block=block_tokens(VOCAB, 64.0), kernel=kernel)
    x = h_s.clone().requires_grad_(True)
    t0 = time.perf_counter()
    loss, _ = chunked_divergence(x, h_t, ids, head, replace(spec))
    loss.backward()
    return time.perf_counter() - t0, loss.item()


def run(a: BenchArgs) -> list[Result]:
    rounds = 1 if a.quick else (a.rounds or DEFAULT_ROUNDS)
    n = QUICK_TOKENS if a.quick else TOKENS
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(HIDDEN, VOCAB, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(VOCAB, HIDDEN, generator=g) * 0.1)
    h_s, h_t = torch.randn(n, HIDDEN, generator=g), torch.randn(n, HIDDEN, generator=g)
    ids = torch.randint(0, VOCAB, (n,), generator=g)
    samples: dict[str, list[float]] = {"harness": [], "trl": []}
    losses = {}
    for _ in range(rounds):
        for kernel in samples:
            secs, losses[kernel] = one_step(kernel, head, h_s, h_t, ids)
            samples[kernel].append(secs)
    ratio = median(samples["trl"]) / median(samples["harness"])
    return [Result(name="kernel", what=f"loss + backward, {n} tokens x {VOCAB} (CPU: TRL's torch fallback "
                                       "+ our statistics pass vs our one pass)",
                   ratio=ratio, ratio_of="trl kernel / harness kernel", target=None, samples=samples,
                   details={"loss_harness": losses["harness"], "loss_trl": losses["trl"],
                            "device": "cuda" if torch.cuda.is_available() else "cpu"})]
