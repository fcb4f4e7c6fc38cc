# DIGITS, reborn. `make help` lists the targets.
PYTHON ?= python3.11
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
PY := $(VENV)/bin/python
MEMBERS := pyproject.toml uv.lock proto/pyproject.toml imaging/pyproject.toml cli/pyproject.toml \
	$(wildcard services/*/pyproject.toml)
export OMP_NUM_THREADS ?= 2

.PHONY: help sync sandbox run demo test test-unit test-int e2e lint fmt schema bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.synced: $(MEMBERS)
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	$(UV) sync --all-packages --locked -p $(PYTHON)
	@touch $@

sync: $(VENV)/.synced ## create or update the environment (uv workspace, one lock)

run: sync sandbox ## start nats-server and all five services; prints the URL; Ctrl-C stops everything
	$(VENV)/bin/digits run

.PHONY: cluster
cluster: sync sandbox ## as `run`, on a 3-node NATS cluster (loopback, JetStream, every stream R3)
	$(VENV)/bin/digits run --cluster 3

demo: sync sandbox ## MNIST → dataset → LeNet → a classified digit, timed (starts the system if none answers)
	$(VENV)/bin/digits demo mnist

sandbox: ## install bubblewrap (custom networks run confined by it) where we can: root with apt
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap >/dev/null || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap; }; \
	  else echo "bubblewrap (bwrap) is missing: custom networks will be refused until it is installed"; fi; }

test: sync ## every test: unit, integration (real nats-server), end to end, browser (Chromium)
	$(PY) -m pytest -q

test-unit: sync ## the fast tests only (no launcher, no browser)
	$(PY) -m pytest -q -m "not e2e and not browser"

e2e: sync ## the whole system through the launcher, DIGITS routes and the browser flow
	$(PY) -m pytest -q -m "e2e or browser"

lint: sync ## ruff and the import-linter contracts (services never import each other)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports pyproject.toml

fmt: sync ## format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

schema: sync ## regenerate the event catalogue (proto/schema: AsyncAPI + JSON Schemas); commit it
	$(PY) -m digits_proto.catalogue proto/schema

bench: sync ## benchmarks (print ratios against their anchors)
	@for b in $(filter-out bench/chaos.py,$(wildcard bench/*.py)); do echo "== $$b"; $(PY) $$b || exit 1; done

chaos: sync sandbox ## kill -9 each service and NATS node, fill the disk, poison a ticket: one table (exit 1 on loss)
	$(PY) bench/chaos.py

clean: ## remove the environment and local data
	rm -rf $(VENV) data artifacts
