"""Every Python block in docs/ runs, on every clock it claims, and is linted.

Items are named `docs/page.md:FIRST-LAST:clock`, so `pytest -k index.md` or
`pytest -k trio` picks a subset. `make update-examples` rewrites the recorded
outputs from the virtual asyncio run and formats the blocks.

The virtual runs are marked `every_python`: `make test-versions` runs them on
each other Python found (tests/lanes.py). A block with `python="3.12+"` is
skipped elsewhere, and its output is recorded on the oldest Python it allows
among those the lanes run (`PYTHON_LANES`, set by tests/lanes.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytest_examples import CodeExample, EvalExample, find_examples

from tests import pagecheck
from tests.harness import (
    DOCS,
    RUNNING_PYTHON,
    Settings,
    check_block,
    check_format,
    check_no_stray_output,
    clocks_for,
    fastest_real_recording,
    includes_only,
    ruff_check,
    ruff_formatted,
    run_block,
    same_but_for_noise,
    updated_source,
)

PAGES = sorted(DOCS.rglob("*.md"))
EXAMPLES = list(find_examples(*PAGES))
RUNS = [
    pytest.param(
        example,
        clock,
        id=f"{example}:{clock}",
        marks=[pytest.mark.every_python] if clock != "real" else [],
    )
    for example in EXAMPLES
    for clock in clocks_for(example, python=None)
]
# The Pythons this update run's lanes cover; a block is recorded on the oldest it allows.
LANE_PYTHONS = os.environ.get("PYTHON_LANES", RUNNING_PYTHON).split()


def recording_python(settings: Settings) -> str | None:
    """The Python that records this block's output, or None if no lane runs it."""
    allowed = [v for v in LANE_PYTHONS if settings.python is None or settings.python.allows(v)]
    return min(allowed, key=lambda v: tuple(map(int, v.split("."))), default=None)


@pytest.mark.parametrize(("example", "clock"), RUNS)
def test_block_runs(
    example: CodeExample, clock: str, tmp_path: Path, eval_example: EvalExample
) -> None:
    settings = Settings.of(example)
    if settings.skip:
        pytest.skip(f"{example}: {settings.skip}")
    if settings.python and not settings.python.allows(RUNNING_PYTHON):
        pytest.skip(f"{example}: needs Python {settings.python} (this is {RUNNING_PYTHON})")
    updating = eval_example.update_examples
    recording_clock = clocks_for(example, python=None)[0]
    if updating and clock != recording_clock:
        pytest.skip(f"outputs are recorded from the {recording_clock} run")
    if updating and recording_python(settings) != RUNNING_PYTHON:
        pytest.skip(f"{example}: recorded on Python {recording_python(settings)}")
    if not updating:
        check_block(example, clock, tmp_path)
        return
    recorded = example.source
    example.source = ruff_formatted(example.source)
    if settings.stack == "real":
        new_source = fastest_real_recording(example, tmp_path)
    else:
        insert_print, _ = run_block(example, clock, tmp_path)
        new_source = updated_source(example, insert_print)
    if clock == "real" and new_source is not None:
        # A real run never prints the same milliseconds twice: keep the
        # recorded output while this run's figures are within REAL_LATE_MS of
        # it either way, so an update changes only what really changed (and a
        # recording made on a loaded machine is replaced by a quieter run).
        if same_but_for_noise(example, new_source):
            new_source = None
    example.source = new_source or example.source
    if example.source != recorded:
        eval_example._mark_for_update(example)


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_block_lint(example: CodeExample, eval_example: EvalExample) -> None:
    Settings.of(example)
    if includes_only(example):
        return
    ruff_check(example)
    check_no_stray_output(example)
    if not eval_example.update_examples:
        check_format(example)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS.parent)))
def test_fences_are_collected(page: Path) -> None:
    problems = pagecheck.fence_problems(page)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS.parent)))
def test_links_resolve(page: Path) -> None:
    problems = pagecheck.link_problems(page)
    assert not problems, "\n".join(problems)


def test_the_markdown_anchors_are_the_built_sites(built_site: Path) -> None:
    """The link check reads anchors from the Markdown: the built pages have each of them."""
    missing = {
        str(page.relative_to(DOCS.parent)): sorted(
            pagecheck.markdown_anchors(page) - pagecheck.anchors(built_site, page)
        )
        for page in PAGES
    }
    assert not any(missing.values()), missing


PATTERN_PAGES = sorted((DOCS / "patterns").glob("*.md"))


@pytest.mark.parametrize("page", PATTERN_PAGES, ids=lambda p: p.name)
def test_pattern_page_anatomy(page: Path) -> None:
    problems = pagecheck.pattern_problems(page)
    assert not problems, "\n".join(problems)


def test_every_pattern_page_is_related_from_another() -> None:
    problems = pagecheck.pattern_set_problems(DOCS / "patterns")
    assert not problems, "\n".join(problems)
