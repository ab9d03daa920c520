"""Our chunked divergence against TRL 1.16's fused kernel, side by side at Qwen3's vocabulary.

python -m harness.bench --only kernel [--rounds 5] [--quick]

One loss + backward over N tokens x 151,936 from final hidden states, each way in turn in the
same process, rounds interleaved (these machines are noisy), after one untimed call each (TRL's
import and first-call costs are not a step's): loss.kernel=harness (our blocks, the loss, its
gradient and every statistic in one pass) and loss.kernel=trl (TRL's
trl.kernels.chunked_divergence for the loss and its gradient, here its torch fallback, plus our
gradient-free statistics pass). Informative, no target: on CUDA TRL's kernel is Triton, and
`make gpu-check` times both there at the 1.7B hidden size (`on_device`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from harness.bench.record import BenchArgs, Result
from harness.bench.timing import median
from harness.losses.chunked import DivergenceSpec, block_tokens, chunked_divergence

DEFAULT_ROUNDS = 5
VOCAB, HIDDEN, TOKENS, QUICK_TOKENS = 151936, 64, 256, 32
KERNELS = ("harness", "trl")


@dataclass(frozen=True)
class Point:
    """What one comparison runs: tokens x hidden at VOCAB, on a device in a dtype; weight_grad:
    the LM head trains (full fine-tuning, tied embeddings) or not (LoRA: the presets)."""

    tokens: int
    hidden: int
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    weight_grad: bool = True
    chunk_mb: float = 64.0


def inputs(p: Point) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(head, h_s_N_H, h_t_N_H, ids_N), seeded: both kernels see the same numbers."""
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(p.hidden, VOCAB, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(VOCAB, p.hidden, generator=g) * p.hidden ** -0.5)
    head = head.to(p.device, p.dtype).requires_grad_(p.weight_grad)
    h_s, h_t = (torch.randn(p.tokens, p.hidden, generator=g).to(p.device, p.dtype) for _ in range(2))
    return head, h_s, h_t, torch.randint(0, VOCAB, (p.tokens,), generator=g).to(p.device)


def one_step(kernel: str, p: Point, head: torch.nn.Module, h_s: torch.Tensor, h_t: torch.Tensor,
             ids: torch.Tensor) -> tuple[float, float]:
    """(seconds, loss) of one loss + backward (CUDA: synchronised before and after)."""
    spec = DivergenceSpec(beta=0.5, temperature=1.1, block=block_tokens(VOCAB, p.chunk_mb), kernel=kernel)
    x = h_s.clone().requires_grad_(True)
    head.weight.grad = None
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    loss, _ = chunked_divergence(x, h_t, ids, head, spec)
    loss.backward()
    sync()
    return time.perf_counter() - t0, loss.item()


def side_by_side(p: Point, rounds: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    """(seconds per round per kernel, the last loss per kernel), rounds interleaved after a warm-up."""
    head, h_s, h_t, ids = inputs(p)
    for kernel in KERNELS:  # untimed: imports, Triton's compilation, allocator warm-up
        one_step(kernel, p, head, h_s, h_t, ids)
    samples: dict[str, list[float]] = {k: [] for k in KERNELS}
    losses: dict[str, float] = {}
    for _ in range(rounds):
        for kernel in KERNELS:
            secs, losses[kernel] = one_step(kernel, p, head, h_s, h_t, ids)
            samples[kernel].append(secs)
    return samples, losses


def on_device(cuda: bool, rounds: int = 3) -> dict:
    """make gpu-check's row: on CUDA the 1.7B preset's point (hidden 2048, bf16, micro-batch 2 x
    2,048 completion tokens, the head frozen as under LoRA); on the CPU a tiny one (the same
    code, so CI runs it). Seconds are medians; ratio = trl / harness."""
    p = (Point(tokens=4096, hidden=2048, device="cuda", dtype=torch.bfloat16, weight_grad=False) if cuda
         else Point(tokens=QUICK_TOKENS, hidden=HIDDEN, weight_grad=False))
    try:
        samples, losses = side_by_side(p, rounds)
    except Exception as err:  # the check reports what failed instead of losing its other figures
        return {"failed": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
    secs = {k: round(median(v), 4) for k, v in samples.items()}
    return {"tokens": p.tokens, "hidden": p.hidden, "vocab": VOCAB,
            "dtype": str(p.dtype).removeprefix("torch."), "seconds": secs,
            "ratio_trl_over_harness": round(secs["trl"] / secs["harness"], 3),
            "loss": {k: round(v, 6) for k, v in losses.items()}}


def run(a: BenchArgs) -> list[Result]:
    rounds = 1 if a.quick else (a.rounds or DEFAULT_ROUNDS)
    p = Point(tokens=QUICK_TOKENS if a.quick else TOKENS, hidden=HIDDEN)
    samples, losses = side_by_side(p, rounds)
    ratio = median(samples["trl"]) / median(samples["harness"])
    return [Result(name="kernel", what=f"loss + backward, {p.tokens} tokens x {VOCAB}, hidden {p.hidden} "
                                       "(CPU: TRL's torch fallback + our statistics pass vs our one pass)",
                   ratio=ratio, ratio_of="trl kernel / harness kernel", target=None, samples=samples,
                   details={"loss_harness": losses["harness"], "loss_trl": losses["trl"],
                            "device": "cuda" if torch.cuda.is_available() else "cpu"})]
