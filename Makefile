# `make run` serves the bundled model on http://127.0.0.1:8000; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-fast lint bench chromium redis-server clean

run: $(VENV)/.installed
	$(PY) -m server serve

test: lint chromium redis-server
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Everything but the real-browser and slow tests, for a quick loop while editing.
test-fast: $(VENV)/.installed-test redis-server
	$(PY) -m pytest -m "not browser and not slow" $(PYTEST_ARGS)

# Runs the benchmarks and rewrites README.md's performance table and docs/benchmarks.md from their output.
bench: $(VENV)/.installed-test
	$(PY) -m bench.report

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# Debian packages the tests need (Playwright's own browser download cannot work offline): installed
# when missing and running as root, else the one command to run is printed.
define debian_package
	@if command -v $(1) >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's $(2) for the tests…"; \
		apt-get install -y $(2) >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y $(2); }; \
	else \
		echo "The tests need $(1). Install it with: sudo apt-get install -y $(2)"; exit 1; \
	fi
endef

chromium:
	$(call debian_package,$(CHROMIUM),chromium)

# Rooms kept in Redis are tested against a real redis-server, started by the tests on a free port.
redis-server:
	$(call debian_package,redis-server,redis-server)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
