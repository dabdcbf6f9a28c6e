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
.PHONY: serve build test check-page test-versions test-loaded update-examples bench clean zensical axe

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

## test: every doc block on every clock, lint, types, the site (also with Zensical), on four workers; then the browser tests (one Chromium); then the version lanes
test: $(READY) $(ZENSICAL_VENV)/.ready $(AXE)
	$(BIN)/python -m pytest -n 4 --ignore=tests/browser
	$(BIN)/python -m pytest tests/browser
	$(MAKE) --no-print-directory test-versions

## check-page: one pattern page, fully: its blocks on every clock, lint, types, links, anatomy, faults, page test, browser (PAGE=<slug>)
check-page: $(READY)
	@test -n "$(PAGE)" || { echo "make check-page needs PAGE=<slug>, e.g. PAGE=prevent-waterfall-chains"; exit 1; }
	$(BIN)/python -m pytest -q -n 2 -k "$(PAGE) or $(subst -,_,$(PAGE))" \
		tests/test_docs.py tests/test_types.py tests/test_faults.py tests/test_critical_path.py \
		$(wildcard tests/test_page_$(subst -,_,$(PAGE)).py) tests/browser

## test-versions: on each other Python 3.11+ found (PATH, pyenv), every block's virtual runs and the unit tests of examples/
test-versions: $(READY)
	$(BIN)/python tests/lanes.py

## update-examples: rewrite recorded outputs and the suite's counts, format blocks, say what changed; blocks restricted to another Python are recorded on it
update-examples: $(READY)
	$(BIN)/python -m tests.update_examples
	$(BIN)/python tests/lanes.py --update-examples

# A version lane's venv (.venv-3.12, ...): tests/lanes.py makes it with
# LANE_PYTHON set to the interpreter it found, and remakes it like .venv.
.venv-%/.ready: requirements/docs.txt requirements/browser.txt requirements/test.txt pyproject.toml
	@test -n "$(LANE_PYTHON)" || { echo "make $@ needs LANE_PYTHON=/path/to/python$*"; exit 1; }
	rm -rf .venv-$*
	$(LANE_PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/python -m pip install --quiet -r requirements/test.txt -e .
	touch $@

## bench: the suite's speed against its budgets, and what starting a task costs here and on each other Python found; rewrites the figures on docs/testing.md and docs/parallelism-cost.md (many minutes)
bench: $(READY) $(ZENSICAL_VENV)/.ready
	$(BIN)/python -m tests.bench
	$(BIN)/python examples/parallelism_cost.py $$($(BIN)/python tests/lanes.py --bench-args)

## test-loaded: `make test` in a fresh clone three times with every core kept busy; writes the result on docs/testing.md (many minutes)
test-loaded: $(READY)
	$(BIN)/python -m tests.loaded

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
	rm -rf $(VENV) .venv-3.* $(ZENSICAL_VENV) site tests/browser/node_modules
