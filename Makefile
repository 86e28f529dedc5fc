# Two commands do everything on a fresh Debian machine with Python 3.11:
#   make run   - install into .venv and start the service (SQLite, development keys)
#   make test  - install what the tests need (Debian packages included) and run the suite
#   make bench - the benchmark suite of tests/benchmarks (BENCH_ARGS='--signals 100000 --quick')
#   make wheel - dist/santamon_backend-*.whl (console and docs included) to install elsewhere
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEV_KEYS := .dev-keys.env
# Debian packages the tests drive: Chromium for the console and docs pages, systemd for
# `systemd-analyze verify` of the unit file, PostgreSQL for the throwaway servers the tests
# start for the PostgreSQL store (tests/pg.py); nodejs runs tests/js when no `node` is on PATH.
TEST_DEBIAN_PACKAGES := chromium systemd postgresql
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run test lint test-js debian-test-packages bench wheel clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	@if [ -z "$$SANTAMON_API_KEY" ]; then \
	  $(BIN)/santamon dev-keys $(DEV_KEYS) --port "$${SANTAMON_PORT:-8443}"; \
	  set -a; . ./$(DEV_KEYS); set +a; \
	fi; \
	exec $(BIN)/santamon serve $(if $(CONFIG),--config $(CONFIG))

debian-test-packages:
	@missing=$$(for p in $(TEST_DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done; \
	  command -v node >/dev/null || echo nodejs); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check santamon tests

# The console's pure modules, with Node's own test runner (no npm packages).
test-js: debian-test-packages
	node --test tests/js/*.test.mjs

test: $(VENV)/.installed-test debian-test-packages lint test-js
	$(BIN)/pytest

bench: $(VENV)/.installed
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/python tests/benchmarks/run.py $(BENCH_ARGS)

# Built from a fresh sdist (what `python -m build` does), so no stale build/ folder leaks in.
wheel: $(VENV)/.installed
	$(BIN)/pip install --quiet 'build>=1.2,<2'
	$(BIN)/python -m build --outdir dist

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache build dist
