# The README's test command is `make test`; .ci/run calls it too.
PYTHON ?= python

.PHONY: test test-fast lint format

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

format:
	$(PYTHON) -m ruff check --fix .
	$(PYTHON) -m ruff format .

# Everything: lint, the fast suite, and the slow real-data / end-to-end tests (skipped without ../shared/data).
test: lint
	$(PYTHON) -m pytest -m "slow or not slow" --timeout=1800

# The quick default while developing.
test-fast: lint
	$(PYTHON) -m pytest
