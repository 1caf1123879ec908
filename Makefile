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
# If pytest dies in native code, tests/crash_capture.py names the test that was running.
test: lint
	FER_TEST_CRASH_DIR=.pytest-crash $(PYTHON) -m pytest -m "slow or not slow" --timeout=1800 \
		|| { status=$$?; $(PYTHON) tests/crash_capture.py .pytest-crash; exit $$status; }

# The quick default while developing.
test-fast: lint
	FER_TEST_CRASH_DIR=.pytest-crash $(PYTHON) -m pytest \
		|| { status=$$?; $(PYTHON) tests/crash_capture.py .pytest-crash; exit $$status; }
