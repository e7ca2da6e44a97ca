# plowshare — `make demo` runs a live demo town; `make test` runs the whole suite.
# Both start with the same idempotent set-up (scripts/setup.sh), which installs what a
# fresh Debian 12 machine is missing.
SHELL := /bin/bash
VENV := .venv
ENV := set -a && . .run/env && set +a

.PHONY: setup demo test check lint typecheck pytest bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(ENV) && $(VENV)/bin/plowshare demo --osm "$$PLOWSHARE_DEMO_OSM"

test: export WANT_CHROMIUM = 1
test: setup check pytest

check: lint typecheck

lint:
	$(VENV)/bin/ruff check .

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(ENV) && $(VENV)/bin/pytest -q

# Benchmarks are not tests: they measure, on the shared real data, and write BENCHMARKS.md.
bench: setup
	$(VENV)/bin/pip install -q -e '.[dev,bench]'
	$(ENV) && $(VENV)/bin/python -m bench.coverage

clean:
	rm -rf .run .venv static/node_modules .mypy_cache .ruff_cache .pytest_cache
