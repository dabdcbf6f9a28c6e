# Two commands do everything: `make serve` and `make test`.
# Each target creates .venv first, from scratch, when it is missing or when a
# requirements file or pyproject.toml has changed since it was made.

# The newest Python 3.11+ that actually runs (a version manager's shim may
# exist for a version that is not installed).
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
export NO_MKDOCS_2_WARNING := 1

ZENSICAL_VENV := .venv-zensical
# axe-core for the accessibility tests, at the version tests/browser/package.json pins.
AXE := tests/browser/node_modules/axe-core/axe.min.js
.PHONY: serve build test update-examples bench determinism clean zensical axe

$(READY): requirements/docs.txt requirements/browser.txt requirements/test.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (python3.11, python3.12, ...)"; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/test.txt -e .
	touch $(READY)

## serve: build the site and serve it on 127.0.0.1:8000, reloading on changes
serve: $(READY)
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000 --livereload --watch examples

## build: build the site into site/, failing on any warning
build: $(READY)
	$(BIN)/mkdocs build --strict

## test: run every doc block on every clock, lint it, and test the site (also with Zensical)
test: $(READY) $(ZENSICAL_VENV)/.ready $(AXE)
	$(BIN)/python -m pytest

## update-examples: rewrite recorded outputs from the virtual asyncio run, and format blocks
update-examples: $(READY)
	$(BIN)/python -m pytest tests/test_docs.py --update-examples -p no:xdist -q \
		-k "test_block_runs or test_block_lint"

## bench: measure what starting a task costs; rewrites docs/assets/parallelism-cost.{json,svg} and the table in docs/parallelism-cost.md (minutes)
bench: $(READY)
	$(BIN)/python examples/parallelism_cost.py

## determinism: run the example suite 20 times, then the real-clock runs with a core kept busy (minutes)
determinism: $(READY)
	$(BIN)/python tests/determinism.py

## zensical: Zensical, Material's successor, in its own environment (tests/test_zensical.py uses it)
zensical: $(ZENSICAL_VENV)/.ready

# The project itself too, without its dependencies: mkdocs.yml loads the chart
# extension, examples.waterfall_chart, from it.
$(ZENSICAL_VENV)/.ready: requirements/zensical.txt pyproject.toml
	rm -rf $(ZENSICAL_VENV)
	$(PYTHON) -m venv $(ZENSICAL_VENV)
	$(ZENSICAL_VENV)/bin/python -m pip install --quiet -r requirements/zensical.txt
	$(ZENSICAL_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

## axe: install axe-core for the browser's accessibility tests (npm, no lock file)
axe: $(AXE)

# No package-lock.json: npm's lock records download addresses. Without npm the
# accessibility tests skip (fail under REQUIRE_BROWSER=1, as in CI).
$(AXE): tests/browser/package.json
	@command -v npm >/dev/null || { echo "npm not found: the accessibility tests will skip"; exit 0; }
	npm install --prefix tests/browser --no-package-lock --no-audit --no-fund --silent
	@test -f $@ && touch $@ || true

clean:
	rm -rf $(VENV) $(ZENSICAL_VENV) site tests/browser/node_modules
