# Entry points: `make sweep EXPOSURES=0,0.25,0.5,0.75,1.0` and `make test`.
# `make sweep` spells one Hydra multirun (python -m harness.run -m ...): harness/front/sweep.py.
# Both create .venv and install the pinned packages on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

EXPOSURES ?= 0,0.25,0.5,0.75,1.0
SEEDS ?=
METHOD ?= opsd
# the default results root; the code's own is harness/runs/identity.py DEFAULT_RESULTS (the config's `results`)
RESULTS ?= results/runs
LAUNCHER ?= local
EXPERIMENT ?=
ARGS ?=
TRIALS ?= 20
STUDY ?=
LR_RANGE ?=
START ?= 0,0.25,0.5,0.75,1

.PHONY: venv base base-spread sweep tune reproduce reproduce-extended test test-slow lint figures bench gpu-check gpu-wheels slurm-up slurm-down clean-base

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU wheel first (it lies on these machines' disk); an unpinned torch pulls CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# `make venv GPU=1` (or GPU=1 on any target): also the GPU extras, vllm 0.30 (pyproject.toml [vllm]),
# into this same .venv: the SLURM jobs run its python (submitit starts them with sys.executable).
# vllm pins torch==2.13.0 as PyPI builds it for CUDA 13, which needs an NVIDIA driver >= 580
# (README: GPU cluster); a CPU-only torch here is refused in one line, as the jobs would refuse it.
GPU ?=
GPU_STAMP := $(VENV)/.installed-gpu
$(GPU_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install -q -e '.[dev,vllm]'
	@$(BIN)/python -c "import sys, torch; sys.exit(0 if torch.version.cuda else 'error: .venv holds the \
	CPU-only torch ' + torch.__version__ + ': install PyPI\'s CUDA build of torch==2.13.0 into it (pip \
	install --force-reinstall --no-deps torch==2.13.0 where pip sees PyPI, not a local CPU wheel)')"
	touch $(GPU_STAMP)

venv: $(STAMP) $(if $(GPU),$(GPU_STAMP))

# Rebuild the base model from scratch and compare it with the shipped one (ARGS="--ship" ships it).
base: venv
	$(BIN)/python -m harness.models.base $(ARGS)

# The base recipe's spread over seeds (SEEDS=0,1,2): one table row per seed.
base-spread: venv
	$(BIN)/python -m harness.models.base_spread --seeds '$(or $(SEEDS),0,1,2)' $(ARGS)

sweep: venv
	$(BIN)/python -m harness.front.sweep --exposures '$(EXPOSURES)' --seeds '$(SEEDS)' \
		--method '$(METHOD)' --results '$(RESULTS)' --launcher '$(LAUNCHER)' \
		--experiment '$(EXPERIMENT)' -- $(ARGS)

# Optuna study of the fixed exposure r (TRIALS = the study's total; a second call resumes it).
tune: venv
	$(BIN)/python -m harness.tune.study --trials '$(TRIALS)' --seeds '$(or $(SEEDS),0)' \
		--study '$(STUDY)' --results '$(RESULTS)' --launcher '$(LAUNCHER)' \
		--lr-range '$(LR_RANGE)' --start '$(START)' -- $(ARGS)

# The whole embedded-default study into one results root (default results/reproduce; RESULTS=<dir>
# given on the command line wins): harness/front/reproduce.py, e.g. ARGS="--dry-run" or ARGS="--only tune".
# make reproduce-extended: the gap map and the horizon2 confirmation (2h18m measured), same root;
# ARGS="--study all" on either: both studies.
reproduce: venv
	$(BIN)/python -m harness.front.reproduce --study default $(if $(filter command line,$(origin RESULTS)),--results '$(RESULTS)') $(ARGS)

reproduce-extended: venv
	$(BIN)/python -m harness.front.reproduce --study extended $(if $(filter command line,$(origin RESULTS)),--results '$(RESULTS)') $(ARGS)

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

# make gpu-check: a random Qwen3 at the 1.7B shape (vocabulary 151,936) through harness.run: 2 OPSD
# steps with LoRA r 64 in bf16 at paper_qwen3_1p7b's lengths and train.micro_batch, the probe, an
# HF Average@k on 8 problems; step time, tokens/s, peak memory against the memory plan
# (harness/bench/gpu_check.py) -> results/gpu/gpu_check.json, re-written as it goes. On a CPU the same at a tiny width
# (seconds; tests/test_gpu_check.py). With .venv here it uses .venv; on a GPU machine without
# network or .venv (torch, transformers, peft, accelerate only) it installs the wheels that
# `make gpu-wheels` downloaded here: carry .gpu-wheels/ there (the device tool's carry), then
#   make gpu-check ARGS="--out $OUT"       # ~16 MB of wheels; training alone took 458 s on an H200
# The target's name ends in site-packages: dill (datasets' fingerprints) pickles classes from a
# module outside a folder so named by value, which fails for pyarrow's.
GPU_WHEELS_DIR ?= .gpu-wheels
GPU_SITE ?= $(GPU_WHEELS_DIR)/site-packages
GPU_PY ?= python3
GPU_PIP ?= $(GPU_PY) -m pip
gpu-check:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m harness.bench.gpu_check $(ARGS); \
	elif ls $(GPU_WHEELS_DIR)/*.whl >/dev/null 2>&1; then \
		$(GPU_PIP) install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
			--target $(GPU_SITE) $(GPU_WHEELS_DIR)/*.whl && \
		PYTHONPATH=$(abspath $(GPU_SITE)):$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(GPU_PY) -m harness.bench.gpu_check $(ARGS); \
	else echo "error: no $(BIN)/python and no wheels in $(GPU_WHEELS_DIR)/ (make gpu-wheels, where pip has a network)" >&2; exit 2; fi

# The pinned pure-python wheels the GPU machine lacks (harness/bench/gpu_check.py GPU_WHEELS), for its
# Python 3.12: pyproject.toml's pins, the venv's versions for the rest; --no-deps.
gpu-wheels: venv
	$(BIN)/python -m harness.bench.gpu_check --wheels $(GPU_WHEELS_DIR)

slurm-up:
	bash tests/slurm/start_cluster.sh

slurm-down:
	bash tests/slurm/stop_cluster.sh

clean-base:
	rm -rf .cache/base
