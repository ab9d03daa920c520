"""The one sweep engine: a Hydra sweeper that launches a whole sweep as one job array.

python -m harness.run -m method=opsd exposure=0,0.5,1 seed=0,1 [experiment=<preset>] [launcher=slurm]

`make sweep` is a spelling of this command (harness/front/sweep.py). The sweeper plans the jobs
(harness/front/plan.py: grids x command line, the base run, every refusal before anything
is written), launches them through the configured launcher (one SLURM array; submitit local
processes in waves of launcher.local_wave, as a job waiting for its slot is a process), shows
one progress bar over the run folders, and ends with the closing table; it exits 1 when a run
did not finish.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from harness.config.schema import ConfigError, RunConfig, to_run_config
from harness.runs.rundir import run_folder

PLUGIN_MODULE = "hydra_plugins.harness_grid"  # Hydra instantiates plugins from hydra_plugins.* only


class GridSweeper(Sweeper):
    def __init__(self, grids: Any = None) -> None:
        self.grids = [dict(g) for g in OmegaConf.to_container(grids)] if grids else []

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def compose(self, overrides: list[str]) -> RunConfig:
        """One job's config, composed the way the launcher will compose it."""
        try:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        except Exception as err:  # composition errors: the first line names the override
            raise ConfigError(str(err).strip().splitlines()[0]) from None
        OmegaConf.set_struct(cfg, False)
        cfg.pop("hydra", None)
        return to_run_config(cfg)

    def sweep(self, arguments: list[str]) -> Any:
        from harness.config.settings import fail
        from harness.front.plan import plan

        try:
            jobs = plan(self.grids, arguments, self.compose)
        except ConfigError as err:  # one line, exit 2, nothing written: as every entry point
            fail(err)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        print(f"launch: {len(jobs)} runs as one job array "
              f"({self.config.hydra.runtime.choices.get('hydra/launcher')}); "
              f"job logs: {sweep_dir}/.submitit/", flush=True)
        returns = self.launch_with_progress([j.overrides for j in jobs], [j.cfg for j in jobs])
        self.close([j.cfg for j in jobs])
        return [returns]

    def launch_with_progress(self, overrides: list[list[str]], cfgs: list[RunConfig]) -> Any:
        """Launch in a thread (the launcher blocks until every job ended); the bar in this one."""
        from harness.front.progress import watch

        out: dict[str, Any] = {}

        wave = self.wave_size(cfgs)

        def launch() -> None:
            try:
                out["returns"] = [ret for start in range(0, len(overrides), wave)
                                  for ret in self.launcher.launch(overrides[start:start + wave],
                                                                  initial_job_idx=start)]
            except BaseException as err:  # re-raised below, in the sweep's own thread
                out["error"] = err

        worker = threading.Thread(target=launch, name="launcher", daemon=True)
        worker.start()
        watch(worker.is_alive, [(run_folder(c), runs_steps(c)) for c in cfgs])
        worker.join()
        if "error" in out:
            raise out["error"]
        return out["returns"]

    def wave_size(self, cfgs: list[RunConfig]) -> int:
        """Jobs per launch call: launcher.local_wave for local processes (every job of a call
        starts at once and waits for a training slot as a process of its own, so a whole large
        array would fill the memory); the whole array for SLURM (array_parallelism caps it)."""
        local = self.config.hydra.runtime.choices.get("hydra/launcher") == "submitit_local"
        return cfgs[0].launcher.local_wave if local and cfgs else max(len(cfgs), 1)

    @staticmethod
    def close(cfgs: list[RunConfig]) -> None:
        """The closing table per results root; exit 1 when a run is not done."""
        from harness.front.summary import print_summary

        roots: dict[str, list[str]] = {}
        for c in cfgs:
            roots.setdefault(c.results, []).append(c.run_name)
        rows = []
        for root, names in roots.items():
            rows += print_summary(Path(root), names)
            print(f"run folders under {root}; figures and tables: make figures RESULTS={root}")
        if any(r["state"] != "done" for r in rows):
            sys.exit(1)


def runs_steps(cfg: RunConfig) -> int:
    return 0 if cfg.method.name == "base" else cfg.train.steps


def register_plugin() -> None:
    """Make the sweeper instantiable as hydra_plugins.harness_grid.GridSweeper."""
    GridSweeper.__module__ = PLUGIN_MODULE
    sys.modules.setdefault(PLUGIN_MODULE, sys.modules[__name__])
    Plugins.instance().register(GridSweeper)


register_plugin()
