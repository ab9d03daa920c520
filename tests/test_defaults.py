"""One source of defaults: the dataclasses of harness/config/schema.py; the yaml only selects and resizes.

python -m pytest -q tests/test_defaults.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from harness.config.hydra_store import run_defaults
from harness.config.schema import ConfigError, to_run_config
from harness.config.settings import CONFIG_DIR, compose, compose_raw
from harness.runs.rundir import flat

GROUPS = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir())


def test_the_composed_default_is_the_dataclass_default():
    """The default group choices add no value that differs from the schema's."""
    assert OmegaConf.to_container(compose_raw([])) == run_defaults()


def test_the_root_yaml_holds_no_values():
    root = yaml.safe_load((CONFIG_DIR / "config.yaml").read_text())
    assert set(root) == {"defaults", "hydra"}, set(root) - {"defaults", "hydra"}


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_option_composes_into_the_schema(group):
    """A yaml key the schema lacks, or a value of the wrong type, fails here, not in a run."""
    for option in sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml")):
        if (group, option) == ("ablation", "fixed_tuned"):  # needs a make tune study: tests/test_tune.py
            with pytest.raises(ConfigError, match="make tune"):
                compose(["profile=smoke", f"{group}={option}", "results=/tmp/unused"])
            continue
        # grpo has no teacher: it is only valid with source=none (and none only with grpo)
        partner = {("loss", "grpo"): ["source=none"], ("source", "none"): ["loss=grpo"]}
        cfg = compose(["profile=smoke", f"{group}={option}", "results=/tmp/unused",
                       *partner.get((group, option), [])])
        if group == "method":
            assert cfg.method.name == option


def test_config_yaml_keys_follow_the_schema_order():
    """A run folder's config.yaml lists the keys in the dataclass order (stable files)."""
    assert list(compose_raw(["profile=smoke"])) == list(run_defaults())


def test_retired_keys_of_old_run_folders_are_dropped_and_unknown_keys_refused():
    old = run_defaults()
    old["task"]["train_file"] = None  # written by run folders made before it was removed
    assert to_run_config(old).task.kind == "synthetic"
    old["task"]["no_such_key"] = 1
    with pytest.raises(ConfigError, match="no_such_key"):
        to_run_config(old)


def test_no_yaml_sets_a_key_to_its_default_twice():
    """Group files set only what their choice changes (the defaults live in the dataclasses)."""
    defaults = run_defaults()
    for path in sorted(Path(CONFIG_DIR).glob("profile/*.yaml")):
        for key, value in flat(yaml.safe_load(path.read_text()) or {}).items():
            if key in ("profile",):
                continue
            assert lookup(defaults, key) != value, f"{path.name}: {key}={value!r} is the default"


def lookup(tree: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return object()
        tree = tree[part]
    return tree
