"""accelerate's to_kwargs no longer rewrites the C environment (a getenv race segfaulted a run).

python -m pytest -q tests/test_envsafe.py
"""

import os
from dataclasses import dataclass, field

from accelerate.utils.dataclasses import GradientAccumulationPlugin, KwargsHandler

from harness.compute import envsafe


@dataclass
class EnvDefault(KwargsHandler):
    mode: str = field(default_factory=lambda: os.environ.get("HARNESS_TEST_MODE", "plain"))


def test_to_kwargs_keeps_semantics_without_touching_libc_env(monkeypatch):
    envsafe.install()
    calls = []
    monkeypatch.setattr(os, "putenv", lambda k, v: calls.append(("put", k)))
    monkeypatch.setattr(os, "unsetenv", lambda k: calls.append(("unset", k)))
    monkeypatch.setitem(os.environ, "HARNESS_TEST_MODE", "fancy")
    calls.clear()  # setitem above went through the recording putenv
    # The instance read the environment; the default inside to_kwargs must not.
    assert EnvDefault().to_kwargs() == {"mode": "fancy"}
    assert GradientAccumulationPlugin(num_steps=3).to_kwargs() == {"num_steps": 3}
    assert calls == []  # the C environment was never rewritten
    assert os.environ["HARNESS_TEST_MODE"] == "fancy" and os.getenv("HARNESS_TEST_MODE") == "fancy"


def test_environment_hidden_only_inside_the_block():
    os.environ["HARNESS_TEST_HIDE"] = "1"
    try:
        with envsafe.python_only_clear_environment():
            assert os.getenv("HARNESS_TEST_HIDE") is None and "HARNESS_TEST_HIDE" not in os.environ
            os.environ["HARNESS_TEST_DROPPED"] = "x"
        assert os.environ["HARNESS_TEST_HIDE"] == "1" and "HARNESS_TEST_DROPPED" not in os.environ
    finally:
        del os.environ["HARNESS_TEST_HIDE"]
