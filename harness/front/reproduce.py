"""make reproduce: the whole embedded-default study, stage by stage, into one results root.

python -m harness.front.reproduce [--results results/reproduce] [--study default|extended|all] \
    [--only STAGE[,STAGE]] [--dry-run] [-- overrides, e.g. profile=smoke]

Two studies (`make reproduce` runs the default one; `make reproduce-extended` the other, into
the same results root; --study all: both):
- default (1h22m20s from a fresh clone on 2 cores, results/README.md): the fixed sweep and
  ATESD, the controller ablations and learning controls, the teacher modes, the tune study, the
  paper's table, figures and claims;
- extended (about 2 hours more): the competence-gap map and its report, and the horizon2
  confirmation on fresh seeds 3-7 (fixed r tuned on validation, ATESD, controls, GRPO) with the
  pre-registered report (analysis/confirm.py).

The stages are data (STAGES below): each sweep stage is one Hydra multirun through the sweep
engine (`python -m harness.run -m results=<root> <its overrides> <yours>`,
harness/front/grid_sweeper.py), so a done run is skipped and a killed one resumes; the tune stage
is `python -m harness.tune.study` (it resumes its study); the analysis stages write
<root>/figures, <root>/tables and the claims report. Before a sweep stage launches, its runs
are planned here with the engine's own planner (harness/front/plan.py): a stage whose runs
are all done is not launched at all, and an analysis stage is not re-run while no run file
and no analysis code changed (<root>/.reproduce/<stage>.stamp): a second `make reproduce`
only re-plans.
A stage whose preset or module is not in this checkout is reported and passed over. Each
stage prints a header; at the end the wall time of each stage (this call and, summed over
calls, every call) is printed and written to <root>/reproduce_times.json. --dry-run prints
the stages and how many runs each plans (and how many are done) without running anything.
Exit 0 when every stage that ran succeeded, 1 when one failed, 2 on bad input (one line).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.config.schema import ConfigError, RunConfig
from harness.config.settings import fail
from harness.front.sweep import check_root

REPO = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS = "results/reproduce"
TIMES_FILE = "reproduce_times.json"
# Trials of the fixed-exposure study (each one default run, seed 0): TPE settles a single
# [0, 1] parameter in well under 20 trials, and 16 keep the stage near a quarter of an hour.
TUNE_TRIALS = 16


@dataclass(frozen=True)
class Stage:
    """One step of the study. kind: `sweep` (args: Hydra overrides of one multirun), `tune`
    (args: harness.tune.study flags), `analysis` (args: module, then its flags; `{results}` is the
    results root). needs: a repo path without which the stage is not in this checkout."""

    name: str
    kind: str
    args: tuple[str, ...]
    about: str
    needs: str = ""
    study: str = "default"

    def available(self) -> bool:
        return not self.needs or (REPO / self.needs).exists()


STAGES: tuple[Stage, ...] = (
    Stage("atesd_vs_fixed", "sweep", ("experiment=atesd_vs_fixed",),
          "fixed exposures 0 .. 1 x 3 seeds, ATESD x 3 seeds, the base model",
          "sweeps/experiment/atesd_vs_fixed.yaml"),
    Stage("controller_ablations", "sweep", ("experiment=controller_ablations",),
          "ATESD against every controller ablation, 3 seeds", "sweeps/experiment/controller_ablations.yaml"),
    Stage("teacher_modes", "sweep", ("experiment=teacher_modes",),
          "live and EMA teacher at r = 0.5 and 1, 3 seeds", "sweeps/experiment/teacher_modes.yaml"),
    Stage("tune", "tune", ("--trials", str(TUNE_TRIALS)),
          f"Optuna study of the fixed exposure, {TUNE_TRIALS} trials (<results>/tune/)",
          "harness/tune/study.py"),
    Stage("paper_table", "sweep", ("experiment=paper_table",),
          "the paper's table: baselines, tuned r, ATESD (both rewards), compositions, 3 seeds",
          "sweeps/experiment/paper_table.yaml"),
    Stage("figures", "analysis", ("analysis.figures",),
          "every figure and table (mismatch, curves, controller, Average@k, per difficulty)"),
    Stage("claims", "analysis", ("analysis.claims", "--out", "{results}/tables/claims.md"),
          "the paper's claims, our numbers, a verdict each", "analysis/claims.py"),
    # ---- the extended study (make reproduce-extended) ----
    Stage("gap_map", "sweep", ("experiment=gap_map",),
          "the competence-gap map: fixed r x 3 seeds at gap 0 and 4 gap levels, the reference controls, "
          "ATESD (both rewards) and GRPO where r < 1 wins", "sweeps/experiment/gap_map.yaml", "extended"),
    Stage("gap_map_report", "analysis", ("analysis.gap_map",),
          "the regime map, mismatch and leak per gap level, controls, claims per level "
          "(tables/gap_map.md, figures/gap_map.png)", "analysis/gap_map.py", "extended"),
    Stage("tune_horizon2", "tune", ("--trials", "4", "--start", "0.25,0.5,0.75,1", "--seeds", "100",
                                    "--study", "horizon2b", "--", "gap.kind=horizon", "gap.level=2"),
          "the fixed r at horizon2 tuned on validation, on its own seed 100 (<results>/tune/horizon2b*)",
          "harness/tune/study.py", "extended"),
    Stage("regime_confirm", "sweep", ("experiment=regime_confirm",),
          "horizon2 on fresh seeds 3-7: tuned r, OPSD r = 1, GRPO, ATESD (both rewards), the learning "
          "controls, target_mismatch, per_problem", "sweeps/experiment/regime_confirm.yaml", "extended"),
    Stage("regime_confirm_report", "analysis",
          ("analysis.confirm", "--level", "horizon2", "--out", "{results}/tables/confirm_horizon2.md"),
          "the confirmation under the pre-registered rules (tables/confirm_horizon2.md)",
          "analysis/confirm.py", "extended"),
)


# ---- planning -------------------------------------------------------------------------------------
def preset_grids(overrides: list[str]) -> list[dict]:
    """The grids of the `experiment=<name>` among the overrides ([] without one)."""
    from omegaconf import OmegaConf

    names = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "experiment"]
    if not names:
        return []
    path = REPO / "sweeps" / "experiment" / f"{names[-1]}.yaml"
    if not path.exists():
        raise ConfigError(f"experiment={names[-1]} is invalid: no {path.relative_to(REPO)}")
    preset = OmegaConf.to_container(OmegaConf.load(path)) or {}
    return list(((preset.get("hydra") or {}).get("sweeper") or {}).get("grids") or [])


def sweep_overrides(stage: Stage, results: str, overrides: list[str]) -> list[str]:
    return [f"results={results}", *stage.args, *overrides]


def plan_sweep(stage: Stage, results: str, overrides: list[str]) -> list[RunConfig]:
    """The stage's runs as the sweep engine plans them (ConfigError: one line, nothing written)."""
    from harness.config.settings import compose
    from harness.front.plan import plan

    args = sweep_overrides(stage, results, overrides)
    return [job.cfg for job in plan(preset_grids(args), args, compose)]


def is_done(cfg: RunConfig) -> bool:
    from harness.runs.rundir import RunDir, run_folder

    return not cfg.force and RunDir(run_folder(cfg)).is_done()


# ---- running --------------------------------------------------------------------------------------
def command(stage: Stage, results: str, overrides: list[str]) -> list[str]:
    """The command line the stage runs."""
    py = [sys.executable, "-m"]
    if stage.kind == "sweep":
        return [*py, "harness.run", "-m", *sweep_overrides(stage, results, overrides)]
    if stage.kind == "tune":  # make tune takes the launcher as a flag, not an override
        launcher = [o for o in overrides if o.startswith("launcher=")]
        rest = [o for o in overrides if not o.startswith("launcher=")]
        flag = ["--launcher", launcher[-1].split("=", 1)[1]] if launcher else []
        flags, own = split_tune_args(stage.args)
        return [*py, "harness.tune.study", *flags, "--results", results, *flag, "--", *own, *rest]
    module, *flags = stage.args
    return [*py, module, "--results", results, *(f.format(results=results) for f in flags)]


def split_tune_args(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """A tune stage's study flags and, after its '--', the overrides of every trial."""
    if "--" not in args:
        return list(args), []
    i = args.index("--")
    return list(args[:i]), list(args[i + 1:])


def analysis_stamp(stage: Stage, results: str, overrides: list[str]) -> str:
    """Changes when a run file, the analysis code or the stage's command changes ('' without runs)."""
    from analysis.cache import fingerprint
    from analysis.cli import AnalysisError
    from analysis.collect import run_folders

    try:
        runs = fingerprint(run_folders(Path(results)))
    except AnalysisError:
        return ""
    h = hashlib.sha1(runs.encode() + " ".join(command(stage, results, overrides)[1:]).encode())
    for path in sorted((REPO / "analysis").glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def stamp_path(stage: Stage, results: str) -> Path:
    return Path(results) / ".reproduce" / f"{stage.name}.stamp"


def run_stage(stage: Stage, results: str, overrides: list[str]) -> str:
    """Run one stage; its outcome: ran | skipped (...) | failed (exit N) | unavailable (...)."""
    if not stage.available():
        return f"unavailable (no {stage.needs} in this checkout)"
    stamp = analysis_stamp(stage, results, overrides) if stage.kind == "analysis" else ""
    if stamp and stamp_path(stage, results).exists() and stamp_path(stage, results).read_text() == stamp:
        print("no run file and no analysis code changed since it last ran: nothing to redo", flush=True)
        return "skipped (runs and code unchanged)"
    if stage.kind == "sweep":
        try:
            cfgs = plan_sweep(stage, results, overrides)
        except ConfigError as err:  # e.g. paper_table's tuned r when the tune stage failed
            return f"failed (not planned: {err})"
        todo = [c for c in cfgs if not is_done(c)]
        if not todo:
            print(f"all {len(cfgs)} runs done: nothing to launch", flush=True)
            return f"skipped (all {len(cfgs)} runs done)"
        print(f"{len(todo)} of {len(cfgs)} runs to do (done runs are skipped)", flush=True)
    cmd = command(stage, results, overrides)
    print("$ " + " ".join(cmd[1:] if cmd[0] == sys.executable else cmd), flush=True)
    code = subprocess.run(cmd).returncode
    if code == 0 and stamp:
        stamp_path(stage, results).parent.mkdir(parents=True, exist_ok=True)
        stamp_path(stage, results).write_text(analysis_stamp(stage, results, overrides))
    return "ran" if code == 0 else f"failed (exit {code})"


def dry_line(stage: Stage, results: str, overrides: list[str]) -> str:
    """What the stage would do, planned but not run."""
    if not stage.available():
        return f"unavailable (no {stage.needs} in this checkout)"
    if stage.kind == "tune":
        flags, _ = split_tune_args(stage.args)
        trials = flags[flags.index("--trials") + 1]
        return f"{trials} trials (a resumed study re-runs no done trial)"
    if stage.kind == "analysis":
        return "writes " + " ".join(command(stage, results, overrides)[2:])
    try:
        cfgs = plan_sweep(stage, results, overrides)
    except ConfigError as err:  # e.g. paper_table's tuned r before the tune stage has run
        return f"cannot plan yet: {err}"
    done = sum(is_done(c) for c in cfgs)
    return f"{len(cfgs)} runs planned, {done} done, {len(cfgs) - done} to run"


# ---- times ----------------------------------------------------------------------------------------
def record_times(results: str, this_call: list[dict]) -> dict:
    """Merge this call's stage times into <results>/reproduce_times.json (every call summed)."""
    path = Path(results) / TIMES_FILE
    old = json.loads(path.read_text()) if path.exists() else {"stages": {}}
    stages = old.get("stages", {})
    for row in this_call:
        prev = stages.get(row["stage"], {"total_s": 0.0, "calls": []})
        prev["calls"].append({k: row[k] for k in ("seconds", "outcome", "started")})
        prev["total_s"] = round(sum(c["seconds"] for c in prev["calls"]), 1)
        stages[row["stage"]] = prev
    out = {"stages": stages, "total_s": round(sum(s["total_s"] for s in stages.values()), 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return out


def print_times(this_call: list[dict], merged: dict) -> None:
    print("\nwall time per stage (this call | all calls):")
    for row in this_call:
        total = merged["stages"][row["stage"]]["total_s"]
        print(f"  {row['stage']:<22} {fmt_s(row['seconds']):>9} | {fmt_s(total):>9}  {row['outcome']}")
    print(f"  {'total':<22} {fmt_s(sum(r['seconds'] for r in this_call)):>9} | "
          f"{fmt_s(merged['total_s']):>9}")


def fmt_s(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


# ---- command line ---------------------------------------------------------------------------------
STUDIES = ("default", "extended", "all")


def select(stages: tuple[Stage, ...], only: str, study: str = "default") -> list[Stage]:
    """The stages of the study, or the --only ones (named from either study: --only wins)."""
    if study not in STUDIES:
        raise ConfigError(f"--study={study} is invalid: one of {', '.join(STUDIES)}")
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = [s.name for s in stages]
    for n in names:
        if n not in known:
            raise ConfigError(f"--only={n} is invalid: one of {', '.join(known)}")
    if names:
        return [s for s in stages if s.name in names]
    return [s for s in stages if study == "all" or s.study == study]


def reproduce(stages: list[Stage], results: str, overrides: list[str]) -> int:
    """Run the stages in order; a failed stage does not stop the next (its runs are missing
    from the analysis, which says so). Exit code: 0, or 1 when a stage failed."""
    rows = []
    for i, stage in enumerate(stages, 1):
        print(f"\n=== [{i}/{len(stages)}] {stage.name}: {stage.about} ===", flush=True)
        started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S"), time.monotonic()
        outcome = run_stage(stage, results, overrides)
        rows.append({"stage": stage.name, "seconds": round(time.monotonic() - t0, 1), "outcome": outcome,
                     "started": started})
        if not outcome.startswith(("ran", "skipped")):
            print(f"{stage.name}: {outcome}", flush=True)
    print_times(rows, record_times(results, rows))
    print(f"results: {results} (figures/, tables/, tables/claims.md, {TIMES_FILE})")
    return 1 if any(r["outcome"].startswith("failed") for r in rows) else 0


def main(argv: list[str], stages: tuple[Stage, ...] = STAGES) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=DEFAULT_RESULTS)
    names = ", ".join(s.name for s in stages)
    ap.add_argument("--study", default="default",
                    help="default (about 1h20m on 2 cores), extended (the gap map and the horizon2 "
                         "confirmation) or all")
    ap.add_argument("--only", default="", help=f"comma-separated stage names (either study): {names}")
    ap.add_argument("--dry-run", action="store_true", help="print the stages and their planned runs only")
    ap.add_argument("overrides", nargs="*", help="hydra overrides of every run, e.g. profile=smoke")
    a = ap.parse_args(argv)
    try:
        if not a.results:
            raise ConfigError("--results='' is empty; e.g. results/reproduce")
        chosen = select(stages, a.only, a.study)
        check_root([f"results={a.results}", *a.overrides])  # a bad override: one line, before any stage
        if a.dry_run:
            for stage in chosen:
                line = dry_line(stage, a.results, a.overrides)
                print(f"{stage.name:<22} {line}  [{stage.about}]", flush=True)
            return 0
        return reproduce(chosen, a.results, a.overrides)
    except ConfigError as err:
        fail(err)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
