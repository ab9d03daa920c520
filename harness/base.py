"""Build (or reuse) the tiny base model: TRL SFTTrainer on student- and teacher-format solutions.

python -m harness.base [hydra overrides]      # or: make base

The base model must make the privileged teacher better than the student, so half
the SFT examples show a (partial or full) reference before the problem. The model
is cached under base.cache_dir/<hash of everything that shapes it>, reused when the
config is unchanged, rebuilt when it changes. The command ends with the table of
student and teacher (r = 0.25, 0.5, 1) Average@k per suite.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import random
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from datasets import Dataset

from harness.config import RunConfig
from harness.exposure import PromptTemplates, ReferenceCutter
from harness.models import TinyModelSpec, build_model, build_tokenizer, load, save
from harness.tasks.datasets import TaskData
from harness.tasks.synthetic import take

BASE_VERSION = 1  # bump when the recipe below changes meaning


def templates_of(cfg: RunConfig) -> PromptTemplates:
    return PromptTemplates(student=cfg.task.student_template, teacher=cfg.task.teacher_template)


def base_key(cfg: RunConfig) -> str:
    shaping = {"v": BASE_VERSION, "model": asdict(cfg.model), "base": asdict(cfg.base),
               "task": asdict(cfg.task), "unit": cfg.exposure_unit}
    shaping["base"].pop("cache_dir")
    return hashlib.sha1(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:12]


def sft_rows(cfg: RunConfig, tokenizer, n: int) -> list[dict[str, str]]:
    """n prompt/completion rows: student format, or teacher format at r = 1 or r ~ U[0, 1]."""
    rng = random.Random(cfg.base.seed)
    data = TaskData(cfg.task)
    cutter = ReferenceCutter(tokenizer, cfg.exposure_unit)
    tpl = templates_of(cfg)
    rows = []
    for p in take(data.train_stream(cfg.base.seed), n):
        if rng.random() < cfg.base.student_fraction:
            prompt = tpl.student_prompt(p.problem)
        else:
            r = 1.0 if rng.random() < cfg.base.full_ref_fraction else rng.random()
            prompt = tpl.teacher_prompt(p.problem, cutter.prefix(p.solution, p.steps, r))
        rows.append({"prompt": prompt, "completion": " " + p.solution + tokenizer.eos_token})
    return rows


def train_base(cfg: RunConfig, out_dir: Path) -> None:
    from trl import SFTConfig, SFTTrainer  # heavy import, only when building

    from harness import envsafe

    envsafe.install()  # accelerate would otherwise rewrite the C environment under live threads

    torch.set_num_threads(max(1, torch.get_num_threads()))
    tok = build_tokenizer()
    m = cfg.model
    spec = TinyModelSpec(m.hidden_size, m.num_layers, m.num_heads, m.num_kv_heads,
                         m.intermediate_size)
    model = build_model(tok, spec, seed=cfg.base.seed)
    rows = sft_rows(cfg, tok, cfg.base.steps * cfg.base.batch_size)
    args = SFTConfig(
        output_dir=str(out_dir / "trainer"), max_steps=cfg.base.steps,
        per_device_train_batch_size=cfg.base.batch_size, learning_rate=cfg.base.lr,
        lr_scheduler_type="cosine", warmup_steps=min(50, cfg.base.steps // 10),
        weight_decay=0.0, logging_steps=max(1, cfg.base.steps // 20), save_strategy="no",
        report_to="none", seed=cfg.base.seed, data_seed=cfg.base.seed, use_cpu=True,
        dataloader_num_workers=0, completion_only_loss=True, max_length=256,
        disable_tqdm=False, bf16=False, fp16=False,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tok)
    result = trainer.train()
    save(trainer.model, tok, out_dir)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    (out_dir / "sft_log.json").write_text(json.dumps(
        {"train_loss": result.training_loss, "loss_curve": losses}, indent=1))
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)


def ensure_base(cfg: RunConfig) -> Path:
    """Path of the base model for cfg, building it once (a file lock serialises builders)."""
    if cfg.model.path:
        path = Path(cfg.model.path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model.path={cfg.model.path!r} is not a saved model folder")
        return path
    root = Path(cfg.base.cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{cfg.profile}-{base_key(cfg)}"
    with open(root / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (final / "config.json").is_file():
            tmp = root / f".tmp-{final.name}"
            shutil.rmtree(tmp, ignore_errors=True)
            t0 = time.time()
            print(f"building base model {final} (TRL SFT, {cfg.base.steps} steps)", flush=True)
            train_base(cfg, tmp)
            (tmp / "build.json").write_text(json.dumps(
                {"seconds": round(time.time() - t0, 1), "config": asdict(cfg)}, indent=1))
            tmp.rename(final)  # atomic: a half-built model is never seen as built
    return final


def main(argv: list[str]) -> None:
    from harness.evaluate import teacher_table
    from harness.settings import compose, fail

    try:
        cfg = compose(argv)
    except ValueError as err:
        fail(err)
    t0 = time.time()
    path = ensure_base(cfg)
    model, tok = load(path)
    table = teacher_table(model, tok, cfg, exposures=(0.25, 0.5, 1.0))
    (path / "base_report.md").write_text(table)
    print(table)
    print(f"base model: {path} ({time.time() - t0:.0f} s in all)")


if __name__ == "__main__":
    main(sys.argv[1:])
