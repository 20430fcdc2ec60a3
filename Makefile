# The post-sales suite. `make run` starts everything; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
PYTEST_WORKERS ?= 4
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run demo test test-sqlite test-postgres lint bench fuzz clean lock browser

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m deploy.run

# Load a simulated book (200 accounts, 18 months) into the suite `make run` started, train the risk model.
demo: $(STAMP)
	$(PY) -m sim --accounts 200 --months 18

test: $(STAMP) browser test-sqlite test-postgres

# The browser tests (console, /docs) drive Debian's chromium; a Japanese font lets its pages render
# readable. Installed when missing and we can; without chromium the browser tests fail, they do not skip.
BROWSER_PACKAGES := chromium fonts-ipafont-gothic
browser:
	@missing=$$(for p in $(BROWSER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	command -v chromium >/dev/null || { echo "chromium is missing (apt-get install chromium): the browser tests will fail"; }

test-sqlite: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q

# Runs when PostgreSQL is reachable; says so and skips when it is not.
test-postgres: $(STAMP)
	@if $(PY) -m deploy.pgcheck "$(TEST_DATABASE_URL)"; then \
		TEST_DATABASE_URL="$(TEST_DATABASE_URL)" $(PY) -m pytest -n $(PYTEST_WORKERS) -q; \
	else echo "PostgreSQL not reachable at $(TEST_DATABASE_URL): skipping the PostgreSQL run"; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy shared services deploy sim

# BENCH_ARGS: e.g. "--quick" or "--only hotpath --workloads realistic" (python -m bench --help).
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# Schemathesis, every phase, a fresh seed (printed), FUZZ_SECONDS per service (default 180) on live
# processes; not part of `make test`, which runs a bounded, fixed-seed pass. Reproduce: FUZZ_SEED=<seed>;
# on PostgreSQL: FUZZ_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres make fuzz.
fuzz: $(STAMP)
	$(PY) -m deploy.fuzz

# Regenerate the pinned versions after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
