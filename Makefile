# pgiam-tui — every target builds .venv from nothing when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-fast demo check bench screenshots clean venv

$(STAMP): pyproject.toml sandbox/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ./sandbox -e '.[sandbox,test]'
	touch $(STAMP)

venv: $(STAMP)

# pytest exits 5 when it collected nothing (a selection gone wrong): say so, and fail
PYTEST_NONE := if [ $$status -eq 5 ]; then echo "pytest collected no tests: check PYTEST_ARGS" >&2; fi; exit $$status

test: $(STAMP)
	status=0; $(BIN)/python -m pytest -q $(PYTEST_ARGS) || status=$$?; $(PYTEST_NONE)

# tests/unit less the slow ones (no servers, no subprocesses), spread over the cores: under 30 s on 2 cores
test-fast: $(STAMP)
	status=0; $(BIN)/python -m pytest -q -m "unit and not slow" -n auto --dist worksteal tests/unit $(PYTEST_ARGS) \
		|| status=$$?; $(PYTEST_NONE)

demo: $(STAMP)
	$(BIN)/pgiam-tui demo

# lint, format, strict types, and the walls between packages ([tool.importlinter] in pyproject.toml)
check: $(STAMP)
	$(BIN)/ruff check src sandbox/src tools tests bench
	$(BIN)/ruff format --check src sandbox/src tools tests bench
	$(BIN)/mypy
	PYTHONPATH=tools $(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e ./sandbox -e '.[sandbox,test,bench]'
	PYTHONPATH=tools \
	$(BIN)/python bench/run_all.py

screenshots: $(STAMP)
	PYTHONPATH=tools $(BIN)/python -m pgiam_devtools.screenshots screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
