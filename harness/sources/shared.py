"""One exposure for every rank: rank 0's source decides, the other ranks load its state.

python -m pytest -q tests/test_distributed.py   # 2 gloo processes, method=atesd: one exposure sequence

With N processes (harness/compute/distributed.py) each rank builds its own source and sees
only its own share of the batch, so window sources (ATESD, random) would drift
apart: each rank's controller reads other statistics. `MainRankSource` wraps the
source of a run of several processes (harness/sources/pick.py make_source; one process is
never wrapped, so that path is unchanged): at each step's end every rank hands in
its statistics, rank 0's source steps on their mean over ranks (the whole batch, as
one process would see it), measures progress and decides; its state_dict is then
broadcast and loaded by the other ranks, so every rank holds the same exposure for
the next batch. Collectives: every rank calls bind and step_end at the same steps
(transformers' Trainer.log runs on all ranks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.compute.distributed import is_main, share_from_main, world
from harness.sources.base import ExposureSource


class MainRankSource(ExposureSource):
    def __init__(self, inner: ExposureSource) -> None:
        super().__init__(inner.total_steps)
        self.inner = inner

    @property
    def per_problem(self) -> bool:  # type: ignore[override]
        return self.inner.per_problem

    @property
    def needs_probe(self) -> bool:  # type: ignore[override]
        return self.inner.needs_probe

    @property
    def wants_outcomes(self) -> bool:  # type: ignore[override]
        return self.inner.wants_outcomes

    def current(self) -> float:
        return self.inner.current()

    def attach(self, problems: dict[str, Any]) -> None:
        self.inner.attach(problems)  # every rank draws every rank's problems (harness/run.py)

    def observe_probe(self, step: int, rows: list[dict[str, Any]]) -> None:
        if is_main():  # rank 0 decides (it probed its own share of the batch)
            self.inner.observe_probe(step, rows)

    def record(self, problem_ids: Sequence[str], correct: Sequence[bool]) -> None:
        """Per-problem sources: every rank's graded rollouts go to rank 0's source (a
        collective, only for sources that read them: the others' runs are unchanged)."""
        if not self.inner.wants_outcomes:
            return
        import torch.distributed as dist

        every: list[Any] = [None] * world()[1]
        dist.all_gather_object(every, (list(problem_ids), list(correct)))
        if is_main():
            self.inner.record([p for ids, _ in every for p in ids], [c for _, cs in every for c in cs])

    def exposures(self, problem_ids: Sequence[str]) -> list[float]:
        """Scalar sources: every rank holds rank 0's state, so each repeats its own current()
        (no collective). Per-problem sources: rank 0 decides for every rank's problems (each
        rank trains on its own share of the batch), then each rank takes its own slice."""
        if not self.inner.per_problem:
            return self.inner.exposures(problem_ids)
        import torch.distributed as dist

        ids_by_rank: list[list[str]] = [[] for _ in range(world()[1])]
        dist.all_gather_object(ids_by_rank, list(problem_ids))
        decided = self.inner.exposures([p for ids in ids_by_rank for p in ids]) if is_main() else None
        every = share_from_main(decided)
        start = sum(len(ids) for ids in ids_by_rank[:world()[0]])
        return every[start:start + len(problem_ids)]

    def bind(self, model, tokenizer, teacher: Any = None) -> None:
        if is_main():  # rank 0 alone measures (P_(-1) of ATESD; the paper reward's teacher term)
            self.inner.bind(model, tokenizer, teacher)
        self.sync()

    def step_end(self, step: int, stats: dict[str, float]) -> list[dict[str, Any]]:
        mean = mean_over_ranks(stats)
        self.step = step
        rows = self.inner.step_end(step, mean) if is_main() else []
        self.sync()
        return rows

    def sync(self) -> None:
        state = share_from_main(self.inner.state_dict() if is_main() else None)
        if not is_main():
            self.inner.load_state_dict(state)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)
        self.step = state["step"]


def mean_over_ranks(stats: dict[str, Any]) -> dict[str, Any]:
    """stats with each finite number replaced by its mean over ranks (a collective);
    other values (None, text, a number some rank lacks or has non-finite) stay rank
    0's own, so a NaN still reaches the source as it would in one process."""
    import torch.distributed as dist

    rows: list[dict[str, Any]] = [{} for _ in range(world()[1])]
    dist.all_gather_object(rows, stats)
    out = dict(rows[0])
    for key, value in rows[0].items():
        xs = [r.get(key) for r in rows]
        if all(is_finite_number(x) for x in xs):
            out[key] = sum(xs) / len(xs) if not isinstance(value, int) else value
    return out


def is_finite_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
