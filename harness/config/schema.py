"""The run's config: the method axes, the run name, RunConfig and its merge from a composed config.

python -c "from harness.config.schema import RunConfig; help(RunConfig)"

These dataclasses (with harness/config/task.py, model.py, train.py and each component's own,
harness/registry.py) are the one source of every key's default (harness/config/hydra_store.py
registers them with Hydra as `run_defaults`; sweeps/ only selects groups and resizes).
`to_run_config` merges a composed config into them (unknown keys and wrong types fail there)
and `__post_init__` checks ranges, so a bad value fails with one line naming it before any
work starts. A run keeps only the component sections its source and loss use, so changing
one method's default leaves every other method's run folders as they were.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, make_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.compute.distributed import ranks
from harness.config.fields import UNITS, ConfigError, F, in_unit, require
from harness.config.gap import REFERENCES, GapConfig, check_reference, effective_tag
from harness.config.model import BaseTrainConfig, ModelConfig
from harness.config.task import TaskConfig
from harness.config.train import (
    EvalConfig,
    LauncherConfig,
    LossConfig,
    ProbeConfig,
    TeacherConfig,
    TrainConfig,
)
from harness.registry import components, find, get, section_owners

# The presets of sweeps/method/ (a trained run's name is made from its axes, method_of).
METHODS = ("base", "opsd", "atesd", "schedule", "random", "grpo", "antisd", "sdar")


@dataclass
class MethodConfig:
    """Two orthogonal axes (groups `source=` and `loss=` set them) and the method's name.

    `method=<name>` is a preset of both (sweeps/method/); every trained run's name is then
    made from the axes (method_of), so `source=atesd loss=antisd` is `atesd_antisd`."""

    name: str = F("opsd", f"base, or set from the axes (method_of); presets: {METHODS}")
    exposure_source: str = F("fixed", "where the exposure comes from: a registered source "
                                      "(harness/sources/; none: no teacher)")
    loss: str = F("opsd", "what the student learns: a registered loss (harness/losses/; grpo: "
                          "no teacher)")

    def __post_init__(self) -> None:
        source, loss = get("source", self.exposure_source), get("loss", self.loss)
        if self.name == "base":
            return
        derived = method_of(self.exposure_source, self.loss)
        require(self.name in (*METHODS, derived), "method", self.name, f"one of {METHODS}")
        if not loss.has_teacher:
            require(not source.has_teacher, "source", source.part or source.name,
                    f"loss={loss.name} has no teacher, so no exposure source "
                    f"(method={loss.name} sets source=none)")
        teacher_sources = "|".join(c.option or c.name for c in components("source") if c.has_teacher)
        require(not loss.has_teacher or source.has_teacher, "loss", self.loss,
                f"it needs a teacher and source={source.name} has none (source={teacher_sources})")
        self.name = derived


def method_of(exposure_source: str, loss: str) -> str:
    """A trained run's method name from the two axes: the source's label, then the loss
    unless it is opsd; fixed + opsd is `opsd`, none + grpo is `grpo`. (fixed, opsd) ->
    opsd, (controller, opsd) -> atesd, (fixed, antisd) -> antisd, (controller, sdar) ->
    atesd_sdar: every old name stays what it was."""
    source, student = find("source", exposure_source), find("loss", loss)
    parts = [source.part if source else exposure_source,
             student.part if student else loss]
    return "_".join(p for p in parts if p) or "opsd"


@dataclass
class RunConfigBase:
    """Every key of a run and its default: the one source (sweeps/ yaml only selects and
    resizes; tests/test_defaults.py fails if the composed default differs from this).

    RunConfig adds one field per component-owned section (controller, schedule, grpo, ...:
    harness/registry.py), None when the run's source and loss do not use it. Field order
    is the order of the keys in a run folder's config.yaml."""

    exposure: float = F(1.0, "fixed exposure r in [0, 1] (the teacher sees the first r of the reference)")
    exposure_unit: str = F("tokens", f"unit of the cut: {UNITS}")
    seed: int = F(0, "seed of the run (rollouts, data order, controller)")
    results: str = F("results/runs", "results root; the run folder is <results>/<run name>")
    name: str | None = F(None, "run folder name; default <method>[-<tag>][-r<exposure>]-s<seed>")
    tag: str | None = F(None, "label in the default run name after the method (ablations set it)")
    force: bool = F(False, "re-run even if the run folder says done (old folder kept as .bak)")
    profile: str = F("default", "name of the size profile in use (set by the profile group)")
    reference: str = F("own", f"what the teacher is shown as the reference: {REFERENCES} "
                              "(harness/tasks/references.py)")
    gap: GapConfig = field(default_factory=GapConfig)
    base: BaseTrainConfig = field(default_factory=BaseTrainConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        in_unit("exposure", self.exposure)
        check_reference(self.reference)
        require(not (self.task.keep_answer and self.gap.kind == "noisy"), "gap.kind", self.gap.kind,
                "task.keep_answer=true would show the true answer after a corrupted reference "
                "(set task.keep_answer=false)")
        require(not (self.task.keep_answer and self.reference in ("shuffled", "corrupted")), "reference",
                self.reference, "task.keep_answer=true would show the problem's own answer after the "
                "replaced reference (set task.keep_answer=false)")
        require(not self.gap.active or self.task.kind == "synthetic", "gap.kind", self.gap.kind,
                f"a competence gap is a synthetic-task knob (task={self.task.kind})")
        from harness.tasks.gap import check_fits  # lazy: harness.tasks imports this module

        check_fits(self.gap, self.task.train_ops, self.train.max_completion_length)
        require(self.exposure_unit in UNITS, "exposure_unit", self.exposure_unit, f"one of {UNITS}")
        require(self.seed >= 0, "seed", self.seed, ">= 0")
        require(self.tag is None or re.fullmatch(r"[A-Za-z0-9_.]+", self.tag) is not None, "tag",
                self.tag, "letters, digits, _ and . only (it goes into a folder name)")
        if self.method.name != "base" and all(getattr(self, k, None) is not None
                                              for k in used_sections(self.method)):
            self.check_micro_batch()
            self.check_source_probe()

    def check_source_probe(self) -> None:
        """source=target_mismatch inverts the probe curve: the probe must run, and each of its
        windows must start on a fresh curve (harness/sources/target_mismatch.py check_probe)."""
        if self.method.exposure_source == "target_mismatch" and getattr(self, "target_mismatch", None):
            from harness.sources.target_mismatch import check_probe  # lazy: sources import config

            check_probe(self.target_mismatch, self.probe.every)

    def check_micro_batch(self, world_size: int | None = None) -> None:
        """The step's rows split evenly over the run's processes (world_size; None: the ones
        launcher.gpus_per_node starts), and train.micro_batch divides a process's share."""
        n = world_size or ranks(self.launcher.gpus_per_node, self.launcher.processes)
        rows, mb = self.rows_per_step, self.train.micro_batch
        what = ("the world size (WORLD_SIZE)" if world_size is not None else
                "launcher.processes" if self.launcher.processes else "launcher.gpus_per_node")
        require(rows % n == 0, what, n, f"must divide the step's {rows} rows (train.prompts_per_step is "
                "the global batch, split over the processes)")
        share = rows // n
        require(mb is None or share % mb == 0, "train.micro_batch", mb,
                f"must divide a process's {share} rows ({rows} a step over {n} process(es); "
                "train.micro_batch=null: all in one)")

    @property
    def rows_per_step(self) -> int:
        """Rollouts the whole run (all processes together) trains on per optimiser step: OPSD's
        prompts, or GRPO's groups. The global batch: the same at any number of GPUs."""
        if get("loss", self.method.loss).trainer == "opsd":  # one rollout a prompt
            return self.train.prompts_per_step
        return self.grpo.problems(self.train.prompts_per_step) * self.grpo.group_size

    def rows_per_rank(self, world_size: int) -> int:
        """One process's share of the step's rows in a run of world_size processes."""
        return self.rows_per_step // max(1, world_size)

    @property
    def rows_per_process(self) -> int:
        """One process's share at the world size the launcher starts (launcher.gpus_per_node /
        launcher.processes): what one GPU holds, for the memory plan."""
        return self.rows_per_rank(ranks(self.launcher.gpus_per_node, self.launcher.processes))

    @property
    def micro_batch(self) -> int:
        """Rows per forward/backward of one process (train.micro_batch, null: its whole share;
        the share is taken at this process's world size, harness/compute/distributed.py)."""
        from harness.compute.distributed import world

        return self.train.micro_batch or self.rows_per_rank(world()[1])

    @property
    def run_name(self) -> str:
        return run_name(self.method.name, self.method.exposure_source, self.exposure, self.seed,
                        effective_tag(self.tag, self.gap, self.reference, self.task.empty_reference),
                        self.name)


def run_name(method: str, exposure_source: str, exposure: float, seed: int,
             tag: str | None = None, name: str | None = None) -> str:
    """The run folder name: the one naming rule (RunConfig.run_name and the run-folder reader).

    <method>[-<tag>][-r<exposure>]-s<seed>; `base` for the base model; `name` wins when set.
    `method` is MethodConfig.name (method_of the two axes); only a fixed exposure adds -r.
    """
    if name:
        return name
    if method == "base":
        return "base"
    label = f"{method}-{tag}" if tag else method
    source = find("source", exposure_source)
    if source.fixed_exposure if source else exposure_source == "fixed":
        return f"{label}-r{exposure:g}-s{seed}"
    return f"{label}-s{seed}"

def make_run_config() -> type:
    """RunConfigBase plus one field per registered component section (None: not used)."""
    extra = [(key, Any, field(default=None, metadata={"help": f"{cls.__doc__ or key}".split(chr(10))[0]}))
             for key, cls in section_owners().items()]
    return make_dataclass("RunConfig", extra, bases=(RunConfigBase,))


RunConfig: Any = make_run_config()


# Keys older run folders' config.yaml may hold that no longer exist (never read).
RETIRED_KEYS = (("task", "train_file"),
                # per_problem's first knobs, now per_problem.bounds (their defaults are its own)
                ("per_problem", "r_min"), ("per_problem", "r_max"))


def config_error_in(err: BaseException) -> ConfigError | None:
    """The ConfigError an OmegaConf error wraps (a resolver's), if any."""
    seen: BaseException | None = err
    while seen is not None and not isinstance(seen, ConfigError):
        seen = seen.__cause__ or seen.__context__
    return seen


def to_run_config(cfg: DictConfig | dict) -> RunConfig:
    """Merge a composed config into the schema; raise ConfigError naming the bad value."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg) if isinstance(cfg, DictConfig) else cfg)
    for group, key in RETIRED_KEYS:
        if isinstance(cfg.get(group), DictConfig):
            cfg[group].pop(key, None)
    owners = section_owners()
    raw = {key: cfg.pop(key) for key in list(cfg.keys()) if key in owners}
    with one_line_errors():
        obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunConfig), cfg))
        # Every section given is checked (a typo in an unused one still fails); only the
        # ones the run's components use are kept (the rest stay None).
        sections = {key: OmegaConf.to_object(OmegaConf.merge(
            OmegaConf.create({key: OmegaConf.structured(owners[key])}), {key: node}))[key]
            for key, node in raw.items()}
    assert isinstance(obj, RunConfigBase)
    keep = used_sections(obj.method) if obj.method.name != "base" else ()
    for key in keep:
        setattr(obj, key, sections.get(key) or owners[key]())
    if keep:  # the sections exist only now: the checks that read them run here
        obj.check_micro_batch()
        obj.check_source_probe()
    return obj


@contextmanager
def one_line_errors() -> Iterator[None]:
    """OmegaConf validation errors as one ConfigError line naming the key."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as err:  # OmegaConf validation errors: keep the first line, it names the key
        cause = config_error_in(err)  # raised by a resolver (harness.tuned_exposure): its own line
        if cause is not None:
            raise cause from None
        first = str(err).splitlines()[0]
        key = getattr(err, "full_key", None)
        raise ConfigError(f"{key}: {first}" if key else first) from None


def used_sections(method: MethodConfig) -> tuple[str, ...]:
    """The component-owned sections a run of these axes reads (its source's, its loss's)."""
    out: list[str] = []
    for kind, name in (("source", method.exposure_source), ("loss", method.loss)):
        found = find(kind, name)
        out += [s for s in (found.sections if found else ()) if s not in out]
    return tuple(out)


def unused_sections(cfg: RunConfigBase) -> list[str]:
    """The component sections a composed config holds that this run does not use."""
    return [key for key in section_owners() if getattr(cfg, key, None) is None]


def as_dict(cfg: RunConfigBase) -> dict[str, Any]:
    """The run's config as a plain dict: the common keys and its used sections only."""
    owned = section_owners()  # once: it walks the registry
    return {k: v for k, v in asdict(cfg).items() if v is not None or k not in owned}
