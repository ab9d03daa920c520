"""One rank of a 2-process CPU run (gloo), started by tests/test_distributed.py through torchrun.

python -m torch.distributed.run --nproc_per_node 2 tests/dist_worker.py OUT_DIR [overrides]

Runs the harness's own `run()` (rank 0 holds the lock and writes the folder) with one
extra callback that records, per rank, the problem ids of its first batch, a hash of
the weights before and after training and the exposure in force at each step (read
from the run's own exposure source, which `keep_source` holds on to), into
OUT_DIR/rank-<rank>.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from transformers import TrainerCallback


def weights_sha(model) -> str:
    h = hashlib.sha1()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()


def keep_source(record: RankRecord) -> None:
    """Give `record` the exposure source run() builds (harness.sources.pick.make_source is
    looked up when training starts, so this wraps the real one)."""
    import harness.sources.pick as sources

    make = sources.make_source

    def make_and_keep(cfg, evaluator=None):
        record.source = make(cfg, evaluator)
        return record.source

    sources.make_source = make_and_keep


class RankRecord(TrainerCallback):
    """What this rank trained on, with which exposures, and what its weights were."""

    def __init__(self, out: Path) -> None:
        self.out, self.seen = out, {"rank": int(os.environ["RANK"]), "exposures": []}
        self.source = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        # The first step's gradient after DDP's all-reduce and clipping (the same on every rank).
        if "grad" not in self.seen and model is not None:
            self.seen["grad"] = [float(x) for _, p in sorted(model.named_parameters()) if p.grad is not None
                                 for x in p.grad.detach().float().flatten().tolist()]

    def on_step_end(self, args, state, control, **kwargs):
        # Before the step's log (Trainer calls on_step_end first): the exposure this
        # step's batch was built with, not the next window's.
        self.seen["exposures"].append(self.source.current())

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        # The rank's share of the first batch: its batch sampler, not the dataloader, so
        # the training's own iteration is untouched (the sampler is seeded per pass).
        first = next(iter(train_dataloader.batch_sampler))
        self.seen["problem_ids"] = [train_dataloader.dataset[i]["privileged_context"] for i in first]
        self.seen["before"] = weights_sha(model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.seen["after"] = weights_sha(model)
        self.seen["global_step"] = state.global_step
        (self.out / f"rank-{self.seen['rank']}.json").write_text(json.dumps(self.seen))


def main() -> None:
    from harness.config.settings import compose_resolved
    from harness.run import run

    out = Path(sys.argv[1])
    cfg, resolved = compose_resolved(sys.argv[2:])
    record = RankRecord(out)
    keep_source(record)
    run(cfg, resolved, observers=[record])


if __name__ == "__main__":
    main()
