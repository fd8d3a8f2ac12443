# `make run` serves the bundled model on http://127.0.0.1:8000; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-fast bench chromium redis-server clean

run: $(VENV)/.installed
	$(PY) -m server serve

test: $(VENV)/.installed-test chromium redis-server
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the real-browser and slow tests, for a quick loop while editing.
test-fast: $(VENV)/.installed-test redis-server
	$(PY) -m pytest -m "not browser and not slow" $(PYTEST_ARGS)

# Runs the benchmarks and rewrites README.md's performance table and docs/benchmarks.md from their output.
bench: $(VENV)/.installed-test
	$(PY) bench/report.py

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# The browser tests drive Debian's Chromium; Playwright's own download cannot work offline.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's chromium for the browser tests…"; \
		apt-get install -y chromium >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y chromium; }; \
	else \
		echo "The browser tests need Chromium at $(CHROMIUM). Install it with: sudo apt-get install -y chromium"; \
		echo "(or point CHROMIUM=/path/to/chromium at another build)"; exit 1; \
	fi

# Rooms kept in Redis are tested against a real redis-server, started by the tests on a free port.
redis-server:
	@if command -v redis-server >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian's redis-server for the classroom tests…"; \
		apt-get install -y redis-server >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y redis-server; }; \
	else \
		echo "The classroom tests need redis-server. Install it with: sudo apt-get install -y redis-server"; exit 1; \
	fi

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
