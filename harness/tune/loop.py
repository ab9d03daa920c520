"""make tune's loop over an Optuna study: ask a batch, launch its runs, read them, tell.

python -m harness.tune --trials 3 -- profile=smoke      # runs this loop (harness/tune/study.py: the CLI)

The study lives in SQLite (<results>/tune/<study>.db), so a later call resumes it. Its
setting (overrides, seeds, lr range) is stored with it: a call with another setting is
refused, since its trials would not be comparable. The sampler is TPE with a constant
liar (a batch's trials are asked before any is told), seeded with --sampler-seed plus
the number of trials already in the study, so a resumed study does not draw its first
call's startup points again.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from harness.config.schema import ConfigError
from harness.tune.results import read_trial, study_paths, table_rows, write_outputs
from harness.tune.space import EXPOSURE, LR, Space, grid, grids_override, run_names

RUN_PARAMS = "run_params"  # trial user attr: the parameters as run (rounded)


@dataclass
class Setup:
    results: str
    study: str
    seeds: list[int]
    space: Space
    batch: int
    trials: int
    sampler_seed: int
    launcher: str
    overrides: list[str] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)  # exposures tried first (enqueue_starts)
    cfg: Any = None  # the study's composed config (harness/tune/study.py probe_config): run names' tags

    def run_names(self, params: dict[str, float]) -> list[str]:
        return run_names(params, self.seeds, self.cfg)

    def fixed_overrides(self) -> list[str]:
        """What every trial's multirun shares (the trials come as hydra.sweeper.grids)."""
        return [f"results={self.results}", f"launcher={self.launcher}", "method=opsd",
                "eval.validation=true", *self.overrides]


def launch(s: Setup, batch: list[tuple[int, dict]]) -> int:
    """The batch's runs that are not done yet, as one multirun; its exit code (0: none to run)."""
    points = [grid(params, seed) for _, params in batch for seed, name in
              zip(s.seeds, s.run_names(params)) if read_trial(s.results, [name]).value is None]
    if not points:
        return 0
    cmd = ["-m", *s.fixed_overrides(), grids_override(points)]
    print("python -m harness.run " + " ".join(cmd), flush=True)
    return subprocess.run([sys.executable, "-m", "harness.run", *cmd]).returncode


def setting_of(s: Setup) -> dict:
    return {"overrides": list(s.overrides), "seeds": list(s.seeds),
            "lr_range": list(s.space.lr_range) if s.space.lr_range else None}


def open_study(s: Setup) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # this loop prints its own lines
    db = study_paths(s.results, s.study)["db"]
    db.parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{db.resolve()}")
    known = s.study in optuna.get_all_study_names(storage)
    n_before = len(optuna.load_study(study_name=s.study, storage=storage).trials) if known else 0
    sampler = optuna.samplers.TPESampler(seed=s.sampler_seed + n_before, constant_liar=True)
    study = optuna.create_study(study_name=s.study, storage=storage, sampler=sampler,
                                direction="maximize", load_if_exists=True)
    stored = study.user_attrs.get("setting")
    if stored is None:
        study.set_user_attr("setting", setting_of(s))
    elif stored != setting_of(s):
        raise ConfigError(f"study {s.study} ({db}) was made with {stored}, this call has "
                          f"{setting_of(s)}: give this setting its own --study")
    return study


def params_of(t: FrozenTrial) -> dict:
    """A trial's parameters as run (stored at ask time; rebuilt from its raw params if not)."""
    if RUN_PARAMS in t.user_attrs:
        return dict(t.user_attrs[RUN_PARAMS])
    # A WAITING (enqueued, not yet asked) trial holds its values as fixed params.
    raw = t.params or t.system_attrs.get("fixed_params", {})
    params = {EXPOSURE: round(raw[EXPOSURE], 4)}
    if LR in raw:
        params[LR] = float(f"{raw[LR]:.3g}")
    return params


def enqueue_starts(study: optuna.Study, starts: list[float]) -> list[float]:
    """Enqueue each start exposure the study has not tried or queued yet; the ones enqueued.

    Why: TPE's first trials are random draws, so a short study may never try r = 1 or 0;
    starting from the fixed sweep's grid makes the tuned r at least as good on validation
    as the best grid point, whatever the budget."""
    seen = {params_of(t)[EXPOSURE] for t in study.trials}
    added = [r for r in starts if round(r, 4) not in seen]
    for r in added:
        study.enqueue_trial({EXPOSURE: r})
    return added


def next_batch(study: optuna.Study, s: Setup) -> list[tuple[int, dict]]:
    """Up to s.batch trials: unfinished ones of an earlier call first, then new asks, never
    past s.trials trials in the study."""
    unfinished = [t for t in study.trials if t.state == TrialState.RUNNING]
    batch = [(t.number, params_of(t)) for t in unfinished[: s.batch]]
    room = s.trials - sum(t.state.is_finished() for t in study.trials) - len(unfinished)
    for _ in range(max(0, min(s.batch - len(batch), room))):
        trial = study.ask()
        params = s.space.suggest(trial)
        trial.set_user_attr(RUN_PARAMS, params)
        batch.append((trial.number, params))
    return batch


def tell(study: optuna.Study, s: Setup, batch: list[tuple[int, dict]]) -> int:
    """Read and tell every trial of the batch; how many failed."""
    failed = 0
    for number, params in batch:
        res = read_trial(s.results, s.run_names(params))
        if res.value is None:
            study.tell(number, state=TrialState.FAIL)
            failed += 1
        else:
            study.tell(number, res.value)
        shown = ", ".join(f"{k} = {v:g}" for k, v in params.items())
        print(f"trial {number}: {shown}: " + (f"validation Average@k = {res.value:.4f}"
              if res.value is not None else f"failed ({res.reason})"), flush=True)
    return failed


def best_of(study: optuna.Study, s: Setup) -> dict | None:
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None
    t = study.best_trial
    params = params_of(t)
    return {"study": s.study, "exposure": params[EXPOSURE], "lr": params.get(LR), "value": t.value,
            "trial": t.number, "complete_trials": len(complete), "seeds": list(s.seeds),
            "overrides": list(s.overrides), "runs": s.run_names(params)}


def report(study: optuna.Study, s: Setup, final: bool = False) -> dict | None:
    """Write the table and the best file; print them at the end."""
    best = best_of(study, s)
    trials = []
    for t in study.trials:
        params, names = params_of(t), s.run_names(params_of(t))
        reason = read_trial(s.results, names).reason if t.state == TrialState.FAIL else ""
        trials.append({"number": t.number, "state": t.state.name.lower(), "params": params,
                       "value": t.value, "runs": names, "reason": reason})
    write_outputs(s.results, s.study, table_rows(trials, best and best["trial"]), best)
    if final:
        paths = study_paths(s.results, s.study)
        print(paths["md"].read_text(), end="")
        print(f"trials table: {paths['md']} and {paths['csv']}; study: {paths['db']}")
        if best:
            lr = f", lr = {best['lr']:g} (not applied by the ablation)" if best["lr"] is not None else ""
            print(f"best r = {best['exposure']:g}{lr} -> {paths['best']}; OPSD at it: python -m harness.run "
                  f"-m ablation=fixed_tuned seed=0,1,2 results={s.results} {' '.join(s.overrides)}")
    return best


def run_study(s: Setup) -> int:
    """The loop; exit code 0, 1 (a trial failed or none completed), or the multirun's own."""
    study, failed = open_study(s), 0
    enqueue_starts(study, s.starts)
    while batch := next_batch(study, s):
        finished = sum(t.state.is_finished() for t in study.trials)
        print(f"tune {s.study}: trials {', '.join(str(n) for n, _ in batch)} "
              f"({finished}/{s.trials} finished before this batch)", flush=True)
        code = launch(s, batch)
        if code not in (0, 1):  # refused or killed: the trials stay unfinished, relaunched next call
            print(f"the batch's multirun exited {code}: its trials stay unfinished; "
                  "the next make tune launches them again", flush=True)
            return code
        failed += tell(study, s, batch)
        report(study, s)
    best = report(study, s, final=True)
    return 1 if failed or best is None else 0
