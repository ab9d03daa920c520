"""Where exposure sources, student losses and task kinds meet: one registered Component each.

python -c "from harness.registry import components; print([c.name for c in components('source')])"

A component is one module in harness/sources/, harness/losses/ or harness/tasks/ that calls
`register(Component(...))` at import. Every module of those packages that does is imported
the first time the registry is read (`discover`), so adding a component edits no list: its module,
its config group yaml (sweeps/source/<option>.yaml, sweeps/loss/<option>.yaml) and its test.

What reads the registry: config validation and composition (harness/config/), the run name
and method name (harness/config/schema.py), the run-folder reader's labels
(harness/runs/runinfo.py), the sweep plan (harness/front/plan.py), the trainer choice
(harness/trainers/build.py) and the table order (analysis/labels.py).

The packages are found by name (importlib), not imported statically: their modules import
this one to register, and this module must not import them back (tests/test_imports.py).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config.fields import ConfigError

MARK = "register(Component("  # what a component module's text holds
KINDS = {"source": "harness.sources", "loss": "harness.losses", "task": "harness.tasks"}
# The config key each kind's choice is stored under (sweeps/<group>/*.yaml set it).
CHOICE_KEYS = {"source": ("method", "exposure_source"), "loss": ("method", "loss"),
               "task": ("task", "kind")}


@dataclass(frozen=True)
class Component:
    """One exposure source, student loss or task kind.

    name        the value of its choice key (method.exposure_source, method.loss, task.kind)
    label       how it reads in tables and legends ("ATESD"); "" for the plain default
    rank        its place among its kind in tables (lower first)
    method_part what it adds to a trained run's method name (`atesd` in `atesd_sdar`); None:
                its name; "" adds nothing (the fixed exposure, the opsd loss)
    option      its config group option when it differs from name (`source=atesd` sets
                method.exposure_source=controller)
    config_key  the run-config section it owns (`controller`), with `config` its dataclass
    uses        other components' sections it reads too (random reads controller.hold)
    build       sources: build(cfg, evaluator) -> ExposureSource; losses on GRPO: build(cfg) ->
                GRPOSideLoss (harness/losses/base.py; None: plain GRPO); tasks: build(task
                config) -> the task's data (suites, validation, training stream)
    trainer     losses: which trainer runs it, "opsd" (harness/trainers/opsd.py) or "rl"
                (harness/trainers/rl.py)
    fixed_exposure  sources: the run takes `exposure=` (its name gets -r<exposure>)
    has_teacher losses: the student learns from a teacher (false: grpo, source none)
    """

    kind: str
    name: str
    label: str = ""
    rank: int = 50
    method_part: str | None = None
    option: str | None = None
    config_key: str | None = None
    config: type | None = None
    uses: tuple[str, ...] = ()
    build: Callable[..., Any] | None = None
    trainer: str = ""
    fixed_exposure: bool = False
    has_teacher: bool = True

    @property
    def part(self) -> str:
        """What it adds to a method name (method_part, or its name when that is None)."""
        return self.name if self.method_part is None else self.method_part

    @property
    def sections(self) -> tuple[str, ...]:
        """Every component-owned config section a run of this component reads."""
        own = (self.config_key,) if self.config_key else ()
        return own + tuple(s for s in self.uses if s not in own)


_REGISTRY: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
_DISCOVERED: set[str] = set()


def register(component: Component) -> Component:
    """Add a component (a module calls this at import; a test may call it too). A second
    registration under the same kind and name replaces the first (a reloaded module)."""
    if component.kind not in KINDS:
        raise ConfigError(f"component kind={component.kind!r} is invalid: one of {tuple(KINDS)}")
    _REGISTRY[component.kind][component.name] = component
    return component


def unregister(kind: str, name: str) -> None:
    """Remove a component (tests that registered a toy one clean up after themselves)."""
    _REGISTRY[kind].pop(name, None)


def discover(kind: str) -> None:
    """Import every module of the kind's package once (each registers what it defines)."""
    if kind in _DISCOVERED:
        return
    _DISCOVERED.add(kind)
    package = importlib.import_module(KINDS[kind])
    for info in pkgutil.iter_modules(package.__path__):
        path = Path(package.__path__[0]) / f"{info.name}.py"
        # Only modules that declare a component: the packages also hold their heavy
        # implementations (torch), which reading the registry must not load.
        if path.is_file() and MARK in path.read_text():
            importlib.import_module(f"{KINDS[kind]}.{info.name}")


def components(kind: str) -> list[Component]:
    """The registered components of a kind, in table order (rank, then name)."""
    discover(kind)
    return sorted(_REGISTRY[kind].values(), key=lambda c: (c.rank, c.name))


def names(kind: str) -> tuple[str, ...]:
    return tuple(c.name for c in components(kind))


def find(kind: str, name: str | None) -> Component | None:
    """The component, or None when no such one is registered (an old run folder's)."""
    discover(kind)
    return _REGISTRY[kind].get(name or "")


def get(kind: str, name: str) -> Component:
    """The component; ConfigError naming the bad value and the registered ones."""
    found = find(kind, name)
    if found is None:
        key = ".".join(CHOICE_KEYS[kind])
        raise ConfigError(f"{key}={name!r} is invalid: one of {names(kind)}")
    return found


def section_owners() -> dict[str, type]:
    """Every component-owned config section and its dataclass."""
    return {c.config_key: c.config for kind in ("source", "loss") for c in components(kind)
            if c.config_key and c.config is not None}
