"""Bad input on the real path, refused before launch: data sizes, fields and files; the model's config
and tokenizer.

python -m harness.run -m task=math task.train_data.path=t.jsonl model.path=MODEL ...  # each point checked

`check_inputs(cfg)` raises a ConfigError (one line, the entry points print it and exit 2) for the
first input of cfg that would otherwise fail inside the job, after its run folder was written:
- math data: a local file that is not valid JSON, a row lacking a mapped field or an answer, an
  empty eval suite, too few training rows for task.val_size (the same loaders and split the run
  uses, harness/tasks/math_data.py and datasets.py: their rows stay cached for the run itself);
- the model folder: a config.json that is unreadable or names no vocab_size, no tokenizer, and
  no chat template while task.chat_template=true.
Only cheap files are read (config.json, tokenizer_config.json, chat_template.*), never weights.
Hub ids are checked only where the local Hugging Face cache holds their files (nothing is
downloaded here); a hub dataset is checked when the run loads it.
The sweep planner calls `check_all` for every planned point (harness/front/plan.py).
Every job calls `check_job` on the machine it runs on: first the GPUs it asks for
(launcher.gpus_per_node > 0 where CUDA is not usable: refused, harness/compute/device.py
`require_cuda`), then `check_inputs`. The planner does not check CUDA: it may run on a login
node without GPUs while the jobs go to GPU nodes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.config.model import is_hub_id
from harness.config.schema import ConfigError, RunConfig
from harness.config.task import DataSource, TaskConfig

# Where a saved tokenizer keeps its chat template (transformers 5 writes chat_template.jinja;
# older saves put it in tokenizer_config.json; processors in chat_template.json).
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


def check_all(cfgs: Iterable[RunConfig]) -> None:
    for cfg in cfgs:
        check_inputs(cfg)


def check_job(cfg: RunConfig) -> None:
    """check_inputs, after the machine: a run asking for GPUs where CUDA is not usable is one line."""
    from harness.compute.device import require_cuda  # imports torch: only a job's check needs it

    require_cuda(cfg.launcher.gpus_per_node)
    check_inputs(cfg)


def check_inputs(cfg: RunConfig) -> None:
    """ConfigError naming the first bad input of cfg; reads no weights and writes nothing."""
    if cfg.model.path:
        check_model(cfg.model.path, cfg.task.chat_template)
    if cfg.task.kind == "math":
        check_math_data(cfg.task)


# --- the model folder -------------------------------------------------------------------------

def model_file(path: str, name: str) -> Path | None:
    """The file `name` of a model: in a local folder, or in the local hub cache for a hub id
    (None when absent: a hub model not cached yet is checked when from_pretrained fetches it)."""
    if not is_hub_id(path):
        f = Path(path) / name
        return f if f.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(path, name)
    return Path(found) if isinstance(found, str) else None


def read_json(f: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{what}: cannot read {f}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: {f} is not a JSON object")
    return data


def vocab_size(config: dict[str, Any]) -> Any:
    """config.json's vocab_size; multimodal checkpoints keep it under text_config."""
    text = config.get("text_config")
    return config.get("vocab_size", text.get("vocab_size") if isinstance(text, dict) else None)


def has_chat_template(path: str) -> bool:
    if any(model_file(path, name) for name in TEMPLATE_FILES):
        return True
    tc = model_file(path, "tokenizer_config.json")
    return bool(tc and read_json(tc, f"model.path={path!r}").get("chat_template"))


def check_model(path: str, chat_template: bool) -> None:
    what = f"model.path={path!r} is invalid"
    config = model_file(path, "config.json")
    if config is None:  # a local folder without one was refused by ModelConfig; a hub id not cached
        return
    vocab = vocab_size(read_json(config, what))
    if not isinstance(vocab, int) or vocab < 1:  # the loss, the probe and the memory plan need it
        raise ConfigError(f"{what}: its config.json has no vocab_size (got {vocab!r}); the loss, the "
                          "probe and the memory plan need the model's vocabulary width")
    if is_hub_id(path):  # only config.json may be cached yet: the rest is fetched with the weights
        return
    if not any(model_file(path, name) for name in TOKENIZER_FILES):
        raise ConfigError(f"{what}: it holds no tokenizer (none of {', '.join(TOKENIZER_FILES)})")
    if chat_template and not has_chat_template(path):
        raise ConfigError(f"task.chat_template=true is invalid: the tokenizer at model.path={path!r} has "
                          "no chat template (none in tokenizer_config.json, no chat_template.jinja); set "
                          "task.chat_template=false or use a chat model's tokenizer")


# --- math data --------------------------------------------------------------------------------

def load_local(src: DataSource) -> list | None:
    """The source's Problems (the run's own loader, cached for it), None for a hub dataset."""
    from harness.tasks.math_data import is_local, load_problems

    if not is_local(src.path):
        return None
    try:
        problems = load_problems(src)
    except (ValueError, KeyError, OSError) as err:
        raise ConfigError(str(err).splitlines()[0]) from None
    if not problems:
        raise ConfigError(f"task data {src.name}: {src.path!r} has no rows"
                          + (f" (limit={src.limit})" if src.limit else ""))
    return problems


def check_math_data(task: TaskConfig) -> None:
    from harness.tasks.math_kind import split_validation

    suites = {src.name: load_local(src) for src in task.eval_data}
    train = load_local(task.train_data)
    if train is None:
        return
    # A hub suite is not loaded here: its problems are not removed, so the count is an upper bound
    # (a split refused here is refused by the run too).
    try:
        split_validation(train, {k: v for k, v in suites.items() if v is not None}, task)
    except ValueError as err:
        raise ConfigError(str(err).splitlines()[0]) from None
