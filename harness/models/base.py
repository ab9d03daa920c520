"""The tiny base model: the shipped one, a cached build, or a fresh TRL SFT build.

python -m harness.models.base [--ship] [hydra overrides]      # or: make base

Where a run's base model comes from (`resolve_base`, harness/models/base_identity.py), in
order: model.path; the shipped model (harness/assets/base_default, checksummed) when the base config's key
matches its manifest; a build cached under base.cache_dir/<profile>-<key>; else a
build on demand where base.build_missing is on (the smoke profile), or one clear line
refusing the run (the default profile: a changed base config needs `make base` first).

`make base` always rebuilds from scratch (SFT: half the rows show a partial or full
reference before the problem, so the privileged teacher beats the student), prints the
student/teacher table and how it compares with the shipped model's; `--ship` makes the
new build the shipped model.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from datasets import Dataset

from harness.config.schema import ConfigError, RunConfig
from harness.models.base_identity import cache_path, resolve_base
from harness.models.shipped import SHIPPED_DIR
from harness.models.tiny import TinyModelSpec, build_model, build_tokenizer, save
from harness.prompts.templates import Prompts, no_reference
from harness.runs.runlock import exclusive
from harness.tasks.datasets import TaskData
from harness.tasks.synthetic import erring_solution, take


def sft_rows(cfg: RunConfig, tokenizer, n: int) -> list[dict[str, str]]:
    """n prompt/completion rows: student format, or teacher format at r = 1 or r ~ U[0, 1]."""
    b = cfg.base
    rng = random.Random(b.seed)
    data = TaskData(cfg.task)
    prompts = Prompts(cfg, tokenizer)
    rows = []
    clean_rows, warm_rows = round(b.error_from * n), round(b.warmup_share * n)
    problems = (take(data.train_stream(b.seed, tuple(b.warmup_ops)), warm_rows)
                + take(data.train_stream(b.seed), n - warm_rows))
    for i, p in enumerate(problems):
        if rng.random() < b.student_fraction:
            reference = ""
        else:
            r = 1.0 if rng.random() < b.full_ref_fraction else rng.random()
            reference = prompts.reference(p, r)
        # no reference: the student prompt, whatever task.empty_reference says of the teacher's r = 0
        t = prompts.templates
        prompt = (t.student_prompt(p.problem) if no_reference(reference)
                  else t.teacher_prompt(p.problem, reference))
        # After the clean phase, what the model writes itself (not copied from the shown
        # reference) errs at base.step_error per step: the student's imperfection is then
        # set by the data, not by how far a seed's SFT run happened to get.
        error = b.step_error if i >= clean_rows else 0.0
        solution = erring_solution(p, cfg.task.modulus, error, rng,
                                   clean_tokens=len(reference.split()))
        rows.append({"prompt": prompt, "completion": prompts.completion(solution)})
    return rows


def train_base(cfg: RunConfig, out_dir: Path) -> None:
    from trl import SFTConfig, SFTTrainer  # heavy import, only when building

    from harness.compute import envsafe
    from harness.compute.device import choose
    from harness.trainers.build import one_device

    envsafe.install()  # accelerate would otherwise rewrite the C environment under live threads

    tok = build_tokenizer()
    m, b = cfg.model, cfg.base
    spec = TinyModelSpec(m.hidden_size, m.num_layers, m.num_heads, m.num_kv_heads,
                         m.intermediate_size)
    model = build_model(tok, spec, seed=b.seed)
    rows = sft_rows(cfg, tok, b.steps * b.batch_size)
    # CUDA when there is one, always fp32: the base key leaves model.dtype out (a run's
    # precision is how it computes, not which base model it starts from).
    device_flags = choose("float32").train_flags()
    # one GPU even where more are visible: DataParallel would multiply the base recipe's batch
    args = one_device(SFTConfig(
        output_dir=str(out_dir / "trainer"), max_steps=b.steps,
        per_device_train_batch_size=b.batch_size, learning_rate=b.lr,
        lr_scheduler_type=b.lr_schedule, warmup_steps=min(50, b.steps // 10),
        weight_decay=b.weight_decay, logging_steps=max(1, b.steps // 20), save_strategy="no",
        report_to="none", seed=b.seed, data_seed=b.seed, **device_flags,
        # Rows in the order drawn (already i.i.d.): the clean phase comes first.
        train_sampling_strategy="sequential",
        dataloader_num_workers=0, completion_only_loss=True, max_length=256,
        disable_tqdm=False,
    ))
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tok)
    result = trainer.train()
    save(trainer.model, tok, out_dir)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    (out_dir / "sft_log.json").write_text(json.dumps(
        {"train_loss": result.training_loss, "loss_curve": losses}, indent=1))
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)


def build(cfg: RunConfig, fresh: bool = False) -> Path:
    """Build cfg's base model into the cache (once; fresh: again), under a file lock."""
    final = cache_path(cfg)
    final.parent.mkdir(parents=True, exist_ok=True)
    # harness/runs/runlock.py: flock, or a heartbeat lockfile where the filesystem has no flock
    with exclusive(final.parent / f".{final.name}.lock", on_busy=lambda holder: None):
        if fresh or not (final / "config.json").is_file():
            tmp = final.parent / f".tmp-{final.name}"
            shutil.rmtree(tmp, ignore_errors=True)
            t0 = time.time()
            print(f"building base model {final} (TRL SFT, {cfg.base.steps} steps)", flush=True)
            train_base(cfg, tmp)
            (tmp / "build.json").write_text(json.dumps(
                {"seconds": round(time.time() - t0, 1), "config": asdict(cfg)}, indent=1))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)  # a half-built model is never seen as built
    return final


def ensure_base(cfg: RunConfig) -> Path:
    """Path of the base model for cfg: shipped, cached, or built now where allowed."""
    return resolve_base(cfg) or build(cfg)


def main(argv: list[str]) -> None:
    from harness.config.settings import compose, fail
    from harness.models.basecheck import compare_with_shipped, describe, table_values

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ship", action="store_true",
                    help=f"make the new build the shipped model ({SHIPPED_DIR})")
    ap.add_argument("overrides", nargs="*", help="hydra overrides, e.g. base.seed=1")
    a = ap.parse_args(argv)
    try:
        cfg = compose(a.overrides)
    except ValueError as err:
        fail(err)
    if cfg.model.path:
        fail(ConfigError(f"model.path={cfg.model.path!r} is set: nothing to build"))
    path = build(cfg, fresh=True)
    seconds = json.loads((path / "build.json").read_text())["seconds"]
    values = table_values(path, cfg)
    print(describe(values, cfg.eval.k))
    print(compare_with_shipped(path, cfg, values))
    print(f"base model: {path} (SFT build {seconds:.0f} s)")
    if a.ship:
        from harness.models.basecheck import ship_build

        print(f"shipped: {ship_build(path, cfg, values, seconds)}")


if __name__ == "__main__":
    main(sys.argv[1:])
