"""A run's identity (harness/runs/identity.py): built once from the config, stored in status.json
by the run, read back by harness/runs/runinfo.py; old folders (no stored identity) derive it.

python -m pytest -q tests/test_identity.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.config.settings import compose, compose_resolved
from harness.runs.identity import DEFAULT_RESULTS, RunIdentity
from harness.runs.rundir import run_folder
from harness.runs.runinfo import read_run
from harness.runs.runlock import lock_path

CASES = [["method=opsd", "exposure=0.5"], ["method=grpo"], ["method=base"], ["method=atesd", "tag=x"],
         ["method=antisd", "exposure=0.25", "seed=3"], ["name=custom", "exposure=1"]]


@pytest.mark.parametrize("overrides", CASES)
def test_identity_of_a_config_and_json_round_trip(tmp_path, overrides):
    cfg = compose(["profile=smoke", f"results={tmp_path}", *overrides])
    ident = RunIdentity.of(cfg)
    assert ident.name == cfg.run_name and ident.method_name == cfg.method.name
    assert ident.folder == run_folder(cfg) == tmp_path / cfg.run_name
    assert ident.lock == lock_path(tmp_path, cfg.run_name) == tmp_path / ".locks" / f"{cfg.run_name}.lock"
    assert RunIdentity.from_json(json.loads(json.dumps(ident.to_json()))) == ident
    with pytest.raises(AttributeError):  # frozen
        ident.name = "other"  # type: ignore[misc]


def test_known_identities():
    got = {tuple(o): RunIdentity.of(compose(["profile=smoke", *o])) for o in CASES}
    assert [(i.name, i.method, i.label) for i in got.values()] == [
        ("opsd-r0.5-s0", "opsd-r0.5", "Fixed r = 0.5"), ("grpo-s0", "grpo", "GRPO"),
        ("base", "base", "Base model"), ("atesd-x-s0", "atesd-x", "ATESD [x]"),
        ("antisd-r0.25-s3", "antisd-r0.25", "AntiSD r = 0.25"), ("custom", "opsd-r1", "OPSD (r = 1)")]


def test_default_results_is_the_configs_and_every_cli_s():
    import argparse

    from analysis.cli import add_common_args
    from harness.front import sweep
    from harness.tune import study

    assert DEFAULT_RESULTS == compose([]).results == "results/runs"
    ap = argparse.ArgumentParser()
    add_common_args(ap)
    assert ap.parse_args([]).results == DEFAULT_RESULTS
    for module in (sweep, study):
        assert "default=DEFAULT_RESULTS" in Path(module.__file__).read_text()


def test_run_stores_its_identity_and_readers_use_it(tmp_path, smoke_base):
    from harness.run import run

    cfg, resolved = compose_resolved(["profile=smoke", f"results={tmp_path}", "method=opsd", "exposure=0.5"])
    run(cfg, resolved)
    ident = RunIdentity.of(cfg)
    status_path = ident.folder / "status.json"
    status = json.loads(status_path.read_text())
    assert status["state"] == "done" and status["identity"] == ident.to_json()
    info = read_run(ident.folder)
    assert (info.name, info.method, info.method_name, info.label) == \
        (ident.name, ident.method, ident.method_name, ident.label)

    # an old folder (written before runs stored their identity): derived from config.yaml, the same
    old = dict(status)
    del old["identity"]
    status_path.write_text(json.dumps(old))
    info = read_run(ident.folder)
    assert info.identity == {}
    assert (info.name, info.method, info.method_name, info.label) == \
        (ident.name, ident.method, ident.method_name, ident.label)
    assert info.exposure == 0.5 and info.is_fixed

    # the stored identity wins over config.yaml
    status_path.write_text(json.dumps({**status, "identity": {**ident.to_json(), "label": "Renamed",
                                                              "method": "renamed-key"}}))
    info = read_run(ident.folder)
    assert (info.label, info.method) == ("Renamed", "renamed-key")
    assert not math.isnan(info.exposure)
