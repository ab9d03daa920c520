"""The mismatch probe: KL both ways at every probed exposure on the same rollouts, in bounded pieces.

python -m harness.run method=opsd profile=smoke probe.every=5    # rows kind=probe in metrics.jsonl

Rows are taken `row_block` rollouts at a time (train.micro_batch): the student's final hidden
states of that block once, then the teacher's for a group of exposures x block rows per
forward (probe.max_rows; 0: every exposure in one forward), and the statistics come from
harness/losses/chunked.py block by block over tokens, so no [rows x tokens x vocabulary] tensor
exists at any size. The mismatch of an exposure is its token-weighted mean over all blocks.
On the synthetic task the same teacher hidden states give each exposure's leak (harness/trainers/
leak.py: the teacher's p of the rollout-consistent vs the reference value where they differ).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from harness.compute.reduce import summed
from harness.losses.chunked import COL, DivergenceSpec, chunked_divergence
from harness.losses.hidden_states import row_blocks
from harness.trainers.leak import LeakAccumulator, LeakTargets, leak_stats

# (rows) -> h_b_C_H of the student; (exposures, rows) -> h_(E b)_C_H of the teacher, exposure-major
StudentHidden = Callable[[slice], torch.Tensor]
TeacherHidden = Callable[[list[float], slice], torch.Tensor]


def exposures_per_forward(n_exposures: int, rows: int, max_rows: int) -> int:
    """Exposures one teacher forward holds: max_rows // rows (at least 1); 0 -> all."""
    return max(1, max_rows // max(rows, 1)) if max_rows else n_exposures


@torch.no_grad()
def probe_mismatch(exposures: list[float], max_rows: int, row_block: int,
                   student_hidden: StudentHidden, teacher_hidden: TeacherHidden,
                   ids_B_C: torch.Tensor, mask_B_C: torch.Tensor, head_s: torch.nn.Module,
                   head_t: torch.nn.Module, spec: DivergenceSpec,
                   leak: LeakTargets | Mapping[float, LeakTargets] | None = None
                   ) -> list[dict[str, float | int | None]]:
    """[{probe_exposure, mismatch_kl_st, mismatch_kl_ts}] per exposure, in the given order; with
    `leak` (the rollouts' leak tokens; per exposure when they carry its shown flags) also leak_*
    (harness/trainers/leak.py KEYS)."""
    leak_at = (None if leak is None else leak if isinstance(leak, Mapping)
               else dict.fromkeys(exposures, leak))
    sums = {r: torch.zeros(2, dtype=torch.float64) for r in exposures}
    leaks = {r: LeakAccumulator() for r in exposures}
    tokens = 0
    for rows in row_blocks(ids_B_C.shape[0], row_block):
        sel_b_C = mask_B_C[rows].bool()
        tokens += int(sel_b_C.sum())
        h_s_N_H = student_hidden(rows)[sel_b_C]
        per = exposures_per_forward(len(exposures), rows.stop - rows.start, max_rows)
        for start in range(0, len(exposures), per):
            chunk = exposures[start:start + per]
            h_t = teacher_hidden(chunk, rows)
            b = rows.stop - rows.start
            ids_N = ids_B_C[rows][sel_b_C]
            for i, r in enumerate(chunk):
                _, stats = chunked_divergence(h_s_N_H, h_t[i * b:(i + 1) * b][sel_b_C], ids_N,
                                              head_s, spec, teacher_head=head_t)
                sums[r] += torch.stack([stats[:, COL["mismatch_kl_st"]].sum(),
                                        stats[:, COL["mismatch_kl_ts"]].sum()]).double().cpu()
                if leak_at is not None:
                    leak_b = leak_at[r].select(rows)
                    leaks[r].add(leak_stats(h_t[i * b:(i + 1) * b], head_t, leak_b, spec.block))
    return probe_rows_over_ranks(exposures, sums, leaks if leak is not None else None, tokens)


def probe_rows_over_ranks(exposures: list[float], sums: dict[float, torch.Tensor],
                          leaks: dict[float, LeakAccumulator] | None, tokens: int
                          ) -> list[dict[str, float | int | None]]:
    """The rows from this rank's sums and every other rank's (a collective in a run of several
    processes, harness/compute/reduce.py): each exposure's mismatch over the whole step's batch."""
    flat = {"tokens": float(tokens)}
    for i, r in enumerate(exposures):
        flat[f"{i}.st"], flat[f"{i}.ts"] = float(sums[r][0]), float(sums[r][1])
    total = summed(flat)
    n = max(total["tokens"], 1.0)
    rows: list[dict[str, float | int | None]] = []
    for i, r in enumerate(exposures):
        leak_keys = leaks[r].reduced().means() if leaks is not None else {}
        rows.append({"probe_exposure": r, "mismatch_kl_st": total[f"{i}.st"] / n,
                     "mismatch_kl_ts": total[f"{i}.ts"] / n, **leak_keys})
    return rows
