"""Statistics over every rank of a run: token-weighted means and global counts.

python -m pytest -q tests/test_rank_equivalence.py   # 2 gloo ranks log what 1 process logs

A run of several processes (harness/compute/distributed.py) trains each rank on its own share of
the step's rows. A logged mean (mismatch, entropies, rollout accuracy, a probe exposure's KL) is
the mean over the whole step's batch only when every rank's sum and weight are added first; the
loss is normalised by the step's global token count so that the averaged DDP gradient equals
a single process's on the same global batch. One process: every function returns its input.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.compute.distributed import world

Mean = float | int | None


def _all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sums over ranks (float64: a sum of many token sums loses nothing)."""
    import torch
    import torch.distributed as dist

    if world()[1] <= 1 or not values or not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64)
    # NCCL reduces CUDA tensors only; gloo CPU ones (the backend init_process_group picked)
    dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else t.device
    t = t.to(dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def global_count(n: int | float) -> float:
    """n summed over ranks (a token or row count)."""
    return _all_reduce_sum([float(n)])[0]


def weighted_means(means: Mapping[str, Mean], weight: float) -> dict[str, Mean]:
    """Each key's mean over all ranks, every rank's own mean weighted by `weight` (its tokens
    or rows). A key that is None on a rank (nothing to average there) carries no weight from it;
    None everywhere stays None. Every rank must call this with the same keys (a collective)."""
    keys = sorted(means)
    flat: list[float] = []
    for k in keys:
        v = means[k]
        w = 0.0 if v is None else float(weight)
        flat += [0.0 if v is None else float(v) * w, w]
    summed = _all_reduce_sum(flat)
    out: dict[str, Mean] = {}
    for i, k in enumerate(keys):
        total, w = summed[2 * i], summed[2 * i + 1]
        out[k] = total / w if w else None
    return out


def summed(counts: Mapping[str, float]) -> dict[str, float]:
    """Each key summed over ranks (counts: tokens, parsed results)."""
    keys = sorted(counts)
    return dict(zip(keys, _all_reduce_sum([float(counts[k]) for k in keys]), strict=True))
