# Set-up is idempotent: `make setup` creates .venv once and reinstalls only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch is installed before the package so that pip never resolves a CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup test demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	# The CPU kernels (cpu_fused: every variant, and the standard cell up to H = 384 in float32) compile
	# once per environment, here rather than in the first run; without a compiler this warns and the
	# standard cell runs on torch's kernel.
	$(BIN)/python -c "from lstmkit.core.backends import cpu_fused; cpu_fused.extension()"
	touch $@

test: setup
	$(BIN)/python -m pytest -q -n 2 tests

# The main job: a global LSTM forecast of the 1428 monthly series of the M3 competition (bundled data),
# scored on the official 18-month hold-out next to naive, seasonal naive, Naive2 and Theta.
demo: setup
	$(BIN)/lstmkit forecast evaluate dataset:m3-monthly --baselines naive,seasonal_naive,naive2,theta --out runs/demo

bench: setup
	$(BIN)/python benchmarks/kernels.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
