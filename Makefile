# One command each for a fresh clone: `make run` and `make test` create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# A CPU-only torch is far smaller than the default CUDA build; take it when the index offers it.
	$(BIN)/python -m pip install --quiet 'torch==2.13.0+cpu' 2>/dev/null \
		|| echo "note: no CPU-only torch 2.13.0 here; pip will pick a torch build itself"
	@# compat mode: a plain path entry instead of an import hook, so start-up costs what an
	@# ordinary install costs (the benchmarks measure it).
	$(BIN)/python -m pip install --quiet -e '.[test,dev]' --config-settings editable_mode=compat
	touch $(STAMP)

# The main job: the first exercise not done yet, in this terminal.
run: $(STAMP)
	$(BIN)/autograd-tutor next

lint: $(STAMP)
	$(BIN)/ruff check autograd_tutor tests benchmarks
	$(BIN)/mypy autograd_tutor

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
