# Two commands do everything: `make serve` and `make test`.
# Each target creates .venv first, from scratch, when it is missing or when a
# requirements file or pyproject.toml has changed since it was made.

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
export NO_MKDOCS_2_WARNING := 1

.PHONY: serve build test update-examples clean

$(READY): requirements/docs.txt requirements/test.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0])'
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

## test: run every doc block on every clock, lint it, and test the site
test: $(READY)
	$(BIN)/python -m pytest

## update-examples: rewrite recorded outputs from the virtual asyncio run, and format blocks
update-examples: $(READY)
	$(BIN)/python -m pytest tests/test_docs.py --update-examples -p no:xdist -q \
		-k "test_block_runs or test_block_lint"

clean:
	rm -rf $(VENV) site
