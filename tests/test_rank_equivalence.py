"""Two gloo processes on a global batch train and log what one process does on that batch.

python -m pytest -q tests/test_rank_equivalence.py

train.prompts_per_step is the global batch (harness/config/schema.py rows_per_step): each of a
run's processes takes its share, the loss is normalised by the step's token count over all
ranks (harness/trainers/opsd.py), and every logged train and probe row is reduced over ranks
(harness/compute/reduce.py). So the same seed and global batch at 1 and 2 processes give the same
run name, the same first-step gradient and the same rows, within float tolerance. Rollouts are
sampled with train.top_k=1 (one candidate token: a rank-independent rollout), as the RNG stream
of a sampler is split differently over 1 and 2 processes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from test_distributed import run_ranks as run_ranks_of

ROOT = Path(__file__).resolve().parent.parent
ROW_KEYS = ("loss", "mismatch_kl_st", "mismatch_kl_ts", "teacher_entropy", "student_entropy",
            "rollout_accuracy", "completion_length", "grad_norm")


def run_ranks(tmp_path: Path, n: int, overrides: list[str]) -> tuple[Path, dict]:
    """tests/dist_worker.py on n gloo processes (torchrun); (results root, rank 0's record)."""
    runs = tmp_path / f"runs{n}"
    return runs, run_ranks_of(runs, tmp_path / f"seen{n}", n, overrides)[0]


def rows(folder: Path, kind: str) -> list[dict]:
    out = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r for r in out if r["kind"] == kind]


def close(a: float | None, b: float | None, rel: float = 2e-4, abs_: float = 1e-6) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory):
    # The shipped default base (not the smoke one, whose teacher barely differs from its student:
    # its mismatch is ~1e-6, too close to 0 for a comparison to mean anything); 14 s a run.
    tmp = tmp_path_factory.mktemp("ranks")
    common = ["train.steps=1", "probe.every=1", "train.top_k=1", "train.checkpoint_every=0", "eval.k=1",
              "train.prompts_per_step=8"]
    return run_ranks(tmp, 1, common), run_ranks(tmp, 2, common)


def test_same_global_batch_same_run_name_and_first_step_gradient(one_and_two):
    (runs1, rec1), (runs2, rec2) = one_and_two
    assert sorted(p.name for p in runs1.iterdir() if not p.name.startswith(".")) == \
        sorted(p.name for p in runs2.iterdir() if not p.name.startswith("."))
    g1, g2 = rec1["grad"], rec2["grad"]
    assert len(g1) == len(g2) > 1000
    scale = max(abs(x) for x in g1)
    worst = max(abs(a - b) for a, b in zip(g1, g2, strict=True))
    assert worst <= 1e-4 * scale, (worst, scale)
    # and a gradient that is not trivially equal: the half-batch gradient of one rank differs
    assert scale > 0


def test_logged_rows_are_over_all_ranks(one_and_two):
    (runs1, _), (runs2, _) = one_and_two
    t1, t2 = rows(runs1 / "opsd-r1-s0", "train"), rows(runs2 / "opsd-r1-s0", "train")
    assert len(t1) == len(t2) == 1
    for key in ROW_KEYS:
        assert close(t1[0][key], t2[0][key]), (key, t1[0][key], t2[0][key])
    p1, p2 = rows(runs1 / "opsd-r1-s0", "probe"), rows(runs2 / "opsd-r1-s0", "probe")
    assert [r["probe_exposure"] for r in p1] == [r["probe_exposure"] for r in p2] and len(p1) == 5
    for a, b in zip(p1, p2, strict=True):
        for key in ("mismatch_kl_st", "mismatch_kl_ts", "leak_p_consistent", "leak_tokens", "leak_share"):
            assert close(a.get(key), b.get(key)), (key, a, b)
    status = json.loads((runs2 / "opsd-r1-s0" / "status.json").read_text())
    assert status["world_size"] == 2 and status["state"] == "done"
    # the rows are not trivially equal: a real mismatch at r = 1, rollouts of unequal lengths
    assert p1[-1]["mismatch_kl_st"] > 1e-3 and t1[0]["completion_length"] % 1 != 0
