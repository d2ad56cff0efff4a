# One command each for a fresh clone: `make run` and `make test` create .venv and install what they need.
# `make run` installs the tutor alone (what a learner needs); `make test` adds the test and
# dev tools (pytest, hypothesis, ruff, mypy, build) to the same venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test fuzz lint bench clean compile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# A CPU-only torch is far smaller than the default CUDA build; take it when the index offers it.
	$(BIN)/python -m pip install --quiet 'torch==2.13.0+cpu' 2>/dev/null \
		|| echo "note: no CPU-only torch 2.13.0 here; pip will pick a torch build itself"
	@# compat mode: a plain path entry instead of an import hook, so start-up costs what an
	@# ordinary install costs (the benchmarks measure it).
	$(BIN)/python -m pip install --quiet -e . --config-settings editable_mode=compat
	touch $(STAMP)

# The test and dev tools, for the targets that need them.
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]' --config-settings editable_mode=compat
	touch $(DEV_STAMP)

# Byte-compiled as pip compiles an installed wheel: with PYTHONDONTWRITEBYTECODE set, an
# editable install would otherwise compile every module of the tool on every start.
compile: $(STAMP)
	@$(BIN)/python -m compileall -q autograd_tutor

# The main job: the first exercise not done yet, in this terminal.
run: compile
	$(BIN)/autograd-tutor next

lint: compile $(DEV_STAMP)
	$(BIN)/ruff check autograd_tutor tests benchmarks
	$(BIN)/mypy autograd_tutor
	$(BIN)/lint-imports

# Two workers (this machine's cores); property tests on their quick budget; the ten slowest shown.
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=10

# The property tests with their full budget.
fuzz: $(DEV_STAMP)
	HYPOTHESIS_PROFILE=thorough $(BIN)/python -m pytest -q -n 2 -k "property or fuzz or soup or hypothesis or matches" tests

bench: compile $(DEV_STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
