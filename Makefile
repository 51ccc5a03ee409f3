# Every target builds its own virtual environment from the hash-pinned lock files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest-xdist workers: the e2e tests mostly wait on Telegram's limits, so more than the cores.
WORKERS ?= 4
UV_COMPILE := uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 --no-header

.PHONY: help demo run test test-fast lint format lock migrate messages clean bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

demo: $(VENV)/.run-deps ## The playground: the bot on an emulated Telegram, no token needed
	$(BIN)/python -m bot demo

run: $(VENV)/.run-deps ## Set up and run the bot (BOT_TOKEN in .env or the environment)
	$(BIN)/python -m bot

test: $(VENV)/.dev-deps lint ## Set up, then lint, type-check and run every test
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal $(PYTEST_ARGS)

# What needs no process of the bot's and no server (no PostgreSQL, no Redis, no browser),
# without the long concurrency audit.
test-fast: $(VENV)/.dev-deps ## The tests that start nothing: under a minute
	env -u TEST_POSTGRES_URL -u TEST_REDIS_URL $(BIN)/python -m pytest -n 2 -q \
		--dist worksteal --ignore=tests/e2e --ignore=tests/benchmarks --ignore=tests/deploy \
		--deselect tests/integration/test_concurrency.py $(PYTEST_ARGS)

# Every benchmark at full size (docs/benchmarks.md). With BENCH_POSTGRES_URL also on
# PostgreSQL: that database is WIPED.
bench: $(VENV)/.dev-deps ## Run every benchmark at full size (docs/benchmarks.md)
	$(BIN)/python -m benchmarks.pipeline 2000
	$(BIN)/python -m benchmarks.floor 2000 $(BENCH_POSTGRES_URL)
	$(BIN)/python -m benchmarks.dispatch_scaling 100 $(BENCH_POSTGRES_URL)
	$(BIN)/python -m benchmarks.live latency 300
	$(BIN)/python -m benchmarks.live offers 300
	$(BIN)/python -m benchmarks.live locations 300
	$(BIN)/python -m benchmarks.deadlines 1000 $(BENCH_POSTGRES_URL)
	$(BIN)/python -m benchmarks.live burst 300
	$(BIN)/python -m benchmarks.live memory 10000
	$(BIN)/python -m benchmarks.http_api 2000 50

lint: $(VENV)/.dev-deps ## Ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev-deps ## Fix what Ruff can, and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(VENV)/.run-deps ## Only migrate the database
	$(BIN)/python -m bot migrate

lock: ## Regenerate the hash-pinned lock files (needs uv)
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra dev -o requirements-dev.lock

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

# --no-compile: Python compiles what it imports as it imports it; compiling every installed
# file up front took 20 of the 47 seconds an install takes.
$(VENV)/.run-deps: requirements.lock | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --no-compile --require-hashes -r requirements.lock
	touch $@

$(VENV)/.dev-deps: requirements-dev.lock | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --no-compile --require-hashes -r requirements-dev.lock
	touch $@ $(VENV)/.run-deps

clean: ## Remove the virtual environment and the caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Extract the English texts from the code and merge them into the Russian catalogue.
messages: $(VENV)/.dev-deps ## Merge new English texts into the Russian catalogue
	$(BIN)/pybabel extract -k _ -k __ --no-location -o /tmp/dispatch-messages.pot handlers bot
	$(BIN)/pybabel update -i /tmp/dispatch-messages.pot -d handlers/locales -l ru --width 100 --ignore-obsolete --no-fuzzy-matching
