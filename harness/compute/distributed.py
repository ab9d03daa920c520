"""One run over several processes (one per GPU): ranks, the env torch.distributed reads, rank 0's say.

python -m harness.run -m launcher=slurm launcher.gpus_per_node=4 ...   # 4 processes per run
torchrun --nproc_per_node 2 -m harness.run profile=smoke ...          # by hand (CPU: gloo)

`launcher.gpus_per_node=N` makes submitit start N tasks of each job (sweeps/launcher/);
each task runs the whole Hydra job. `export_submitit_env` turns submitit's task ids into
the env:// variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) that
transformers' Trainer (accelerate) reads: NCCL on CUDA, gloo on the CPU. Rank 0 alone
owns the run folder (lock, status, metrics, eval); the other ranks follow its decision
(`share_from_main`). One process (no RANK/WORLD_SIZE) is the default and touches nothing here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from omegaconf import OmegaConf

T = TypeVar("T")


def ranks(gpus_per_node: int, processes: int | None = None) -> int:
    """Processes per job: launcher.processes when set, else one per GPU, one on the CPU."""
    return int(processes) if processes else max(1, int(gpus_per_node))


def gpus_or_null(gpus_per_node: int) -> int | None:
    """sbatch's --gpus-per-node; left out (None) for a CPU job, where `=0` needs GRES."""
    return int(gpus_per_node) or None


def register_resolvers() -> None:
    """The interpolations sweeps/launcher/*.yaml use (`${harness.ranks:...}`)."""
    OmegaConf.register_new_resolver("harness.ranks", ranks, replace=True)
    OmegaConf.register_new_resolver("harness.gpus_or_null", gpus_or_null, replace=True)


def export_submitit_env() -> None:
    """In a submitit job of several tasks, set the env:// variables of torch.distributed.
    Nothing when they are set already (torchrun) or the job has one task."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    import submitit

    try:
        job = submitit.JobEnvironment()
    except RuntimeError:  # not in a submitit job
        return
    if job.num_tasks <= 1:
        return
    # sbatch exports the submitting shell's environment: a stale MASTER_PORT or LOCAL_RANK there
    # (left by earlier torchrun work) made export() raise (submitit helpers.py, its `if not
    # overwrite` check), and submitit would reuse a stale MASTER_PORT, maybe one in use. Dropped,
    # the port derives from the job id (the same on every task) and the job's values overwrite.
    for key in ("MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(key, None)
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a distributed run."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    return world()[0] == 0


_LONG_WAIT_GROUP: Any = None  # a gloo group whose timeout is the job's: rank 0's evaluation


def local_device_index(local_rank: int, visible: int) -> int:
    """The CUDA device of a rank: LOCAL_RANK where every task sees the node's GPUs, and modulo
    the visible count where SLURM binds each task to its own (GRES autobind, --gpu-bind: every
    task then sees one "device 0", and cuda:LOCAL_RANK would be an invalid ordinal)."""
    if visible < 1:
        raise RuntimeError("a distributed CUDA run sees no GPU (torch.cuda.device_count() == 0)")
    return local_rank % visible


def init_process_group(timeout_min: float | None = None, long_wait_min: float | None = None) -> None:
    """The default process group, with the backend accelerate would pick (it reuses it).

    timeout_min: how long a training collective may wait (launcher.collective_timeout_min): short,
    so that a rank that died or hangs ends the job in minutes, not at its time limit.
    long_wait_min: the one wait that may be long, the other ranks waiting for rank 0's evaluation
    in `finish()`, goes through its own gloo group with this timeout (launcher.timeout_min).
    None keeps torch's defaults. The first call decides: later ones find the group made."""
    import datetime

    import torch
    import torch.distributed as dist

    global _LONG_WAIT_GROUP
    if world()[1] <= 1 or dist.is_initialized():
        return
    timeout = None if timeout_min is None else datetime.timedelta(minutes=timeout_min)
    if torch.cuda.is_available():
        torch.cuda.set_device(local_device_index(int(os.environ.get("LOCAL_RANK", 0)),
                                                 torch.cuda.device_count()))
        dist.init_process_group("nccl", timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    if long_wait_min is not None:
        _LONG_WAIT_GROUP = dist.new_group(backend="gloo", timeout=datetime.timedelta(minutes=long_wait_min))


def share_from_main(value: Any) -> Any:
    """Rank 0's `value` on every rank (a collective: every rank must call it)."""
    if world()[1] <= 1:
        return value
    import torch.distributed as dist

    init_process_group()
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class MainRankFailed(RuntimeError):
    """Rank 0 failed at a step every rank waits on; its error, on the other ranks."""


def main_decides(decide: Callable[[], T]) -> T:
    """decide() on rank 0 and its result on every rank; rank 0's error is raised on all
    (no rank waits for a decision that never comes). One process: just decide()."""
    if world()[1] <= 1:
        return decide()
    if is_main():
        try:
            out = decide()
        except BaseException as err:
            share_from_main(("error", f"{type(err).__name__}: {err}".splitlines()[0]))
            raise
        share_from_main(("ok", out))
        return out
    kind, out = share_from_main(None)
    if kind == "error":
        raise MainRankFailed(f"rank 0: {out}")
    return out


def wait_all() -> None:
    """Every rank waits here for the others on the long-timeout group: a data-parallel
    evaluation's shares (harness/evaluation/shards.py) take as long as the evaluation."""
    if world()[1] <= 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier(group=_LONG_WAIT_GROUP)


def finish() -> None:
    """Every rank leaves together: a rank that exits while another still evaluates tears
    the process group down under it (gloo aborts the process)."""
    if world()[1] <= 1:
        return
    import torch.distributed as dist

    global _LONG_WAIT_GROUP
    if dist.is_initialized():
        dist.barrier(group=_LONG_WAIT_GROUP)  # the long-timeout group (None: the default one)
        _LONG_WAIT_GROUP = None
        dist.destroy_process_group()
