# Entry points: `make sweep EXPOSURES=0,0.25,0.5,0.75,1.0` and `make test`.
# `make sweep` spells one Hydra multirun (python -m harness.run -m ...): harness/sweep.py.
# Both create .venv and install the pinned packages on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

EXPOSURES ?= 0,0.25,0.5,0.75,1.0
SEEDS ?=
METHOD ?= opsd
RESULTS ?= results/runs
LAUNCHER ?= local
EXPERIMENT ?=
ARGS ?=
TRIALS ?= 20
STUDY ?=
LR_RANGE ?=
START ?= 0,0.25,0.5,0.75,1

.PHONY: venv base base-spread sweep tune reproduce test test-slow lint figures bench gpu-check gpu-wheels slurm-up slurm-down clean-base

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU wheel first (it lies on these machines' disk); an unpinned torch pulls CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Rebuild the base model from scratch and compare it with the shipped one (ARGS="--ship" ships it).
base: venv
	$(BIN)/python -m harness.base $(ARGS)

# The base recipe's spread over seeds (SEEDS=0,1,2): one table row per seed.
base-spread: venv
	$(BIN)/python -m harness.base_spread --seeds '$(or $(SEEDS),0,1,2)' $(ARGS)

sweep: venv
	$(BIN)/python -m harness.sweep --exposures '$(EXPOSURES)' --seeds '$(SEEDS)' \
		--method '$(METHOD)' --results '$(RESULTS)' --launcher '$(LAUNCHER)' \
		--experiment '$(EXPERIMENT)' -- $(ARGS)

# Optuna study of the fixed exposure r (TRIALS = the study's total; a second call resumes it).
tune: venv
	$(BIN)/python -m harness.tune --trials '$(TRIALS)' --seeds '$(or $(SEEDS),0)' \
		--study '$(STUDY)' --results '$(RESULTS)' --launcher '$(LAUNCHER)' \
		--lr-range '$(LR_RANGE)' --start '$(START)' -- $(ARGS)

# The whole embedded-default study into one results root (default results/reproduce; RESULTS=<dir>
# given on the command line wins): harness/reproduce.py, e.g. ARGS="--dry-run" or ARGS="--only tune".
reproduce: venv
	$(BIN)/python -m harness.reproduce $(if $(filter command line,$(origin RESULTS)),--results '$(RESULTS)') $(ARGS)

test: venv slurm-up
	$(BIN)/python -m pytest -q

test-slow: venv slurm-up
	$(BIN)/python -m pytest -q -m slow

lint: venv
	$(BIN)/ruff check harness analysis tests

# Tables and figures from the run folders (ARGS="--group-by task.x" when task configs mix).
figures: venv
	$(BIN)/python -m analysis.figures --results $(RESULTS) $(ARGS)

# DESIGN.md's performance targets, each a ratio measured side by side (harness/bench/):
# results/bench/<name>.json + README.md. ARGS="--only step,probe --rounds 7 --quick".
bench: venv
	$(BIN)/python -m harness.bench $(ARGS)

# 3 OPSD steps (LoRA, bf16) at the 1.7B shape and preset lengths, a probe, Average@k on 8 problems,
# against the memory plan (harness/gpu_check.py); on a CPU the same at a tiny width. On a GPU
# machine without network and without .venv: `make gpu-wheels` here first, carry .gpu-wheels/.
GPU_WHEELS := trl|datasets|hydra-core|omegaconf|antlr4-python3-runtime|hydra-submitit-launcher|submitit|cloudpickle|math-verify|latex2sympy2.extended|multiprocess|dill|xxhash|fsspec|tqdm
gpu-check:
	@if [ -d .gpu-wheels ] && [ ! -x $(BIN)/python ]; then \
		python3 -m pip install -q --no-index --no-deps --target .gpu-wheels/site .gpu-wheels/*.whl .gpu-wheels/*.tar.gz && \
		PYTHONPATH=.gpu-wheels/site:$$PWD python3 -m harness.gpu_check $(ARGS); \
	else $(MAKE) venv && $(BIN)/python -m harness.gpu_check $(ARGS); fi

# The pure-python packages a GPU machine with torch/transformers/peft/accelerate lacks, as wheels.
gpu-wheels: venv
	mkdir -p .gpu-wheels
	$(BIN)/pip freeze | grep -iE '^($(GPU_WHEELS))==' > .gpu-wheels/requirements.txt
	$(BIN)/pip download -q --no-deps -d .gpu-wheels -r .gpu-wheels/requirements.txt

slurm-up:
	bash tests/slurm/start_cluster.sh

slurm-down:
	bash tests/slurm/stop_cluster.sh

clean-base:
	rm -rf .cache/base
