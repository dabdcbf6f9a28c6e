"""The cost page shows what examples/parallelism_cost.py measured, and its prose holds.

The benchmark itself is not run here (`make bench` runs it); these tests
check that the table, the chart and the statements on the page agree with
the committed figures.
"""

from __future__ import annotations

import json
import re

import pytest

from examples import parallelism_cost as bench

FIGURES = json.loads(bench.JSON_PATH.read_text())
ASYNCIO_TASKS = ("gather", "taskgroup")
ANYIO_TASKS = ("anyio-asyncio", "anyio-trio")


def per_task(variant: str, tasks: int) -> float:
    return bench.figure(FIGURES, variant, tasks)


def test_every_variant_and_task_count_was_measured() -> None:
    measured = {(row["variant"], row["tasks"]) for row in FIGURES["results"]}
    wanted = {(variant.key, n) for variant in bench.VARIANTS for n in bench.TASK_COUNTS}
    assert measured == wanted


def test_page_table_is_the_measured_figures() -> None:
    page = bench.PAGE_PATH.read_text()
    block = bench.FIGURES_BLOCK.search(page)
    assert block, "the page lost its <!-- figures:start/end --> markers"
    assert block[0] == (
        f"<!-- figures:start -->\n{bench.figures_block(FIGURES)}\n<!-- figures:end -->"
    ), "the table differs from docs/assets/parallelism-cost.json: run `make bench`"


def test_chart_is_drawn_from_the_measured_figures() -> None:
    assert bench.SVG_PATH.read_text() == bench.svg(FIGURES), (
        "docs/assets/parallelism-cost.svg differs from the JSON: "
        "run `.venv/bin/python examples/parallelism_cost.py --render-only`"
    )


def test_chart_needs_no_other_origin() -> None:
    chart = bench.SVG_PATH.read_text()
    assert not re.search(r"(?:href|src|url)\s*[=(]\s*[\"']?(?:https?:)?//", chart)
    assert "prefers-color-scheme: dark" in chart


def test_page_says_where_and_how_it_was_measured() -> None:
    page = bench.PAGE_PATH.read_text()
    assert bench.measured_where(FIGURES) in page
    assert f"$ {FIGURES['command']}" in page
    assert "![" in page and "(assets/parallelism-cost.svg)" in page


# --- The page's statements, checked against the figures ------------------------------------


@pytest.mark.parametrize("tasks", bench.TASK_COUNTS)
def test_a_task_costs_tens_of_times_a_plain_await(tasks: int) -> None:
    plain = per_task("await", tasks)
    for variant in ASYNCIO_TASKS + ANYIO_TASKS:
        assert per_task(variant, tasks) >= 10 * plain, variant


@pytest.mark.parametrize("tasks", bench.TASK_COUNTS)
def test_taskgroup_is_cheaper_than_gather(tasks: int) -> None:
    assert per_task("taskgroup", tasks) < per_task("gather", tasks)


@pytest.mark.parametrize("tasks", bench.TASK_COUNTS)
def test_anyio_costs_more_per_task_on_either_backend(tasks: int) -> None:
    assert min(per_task(v, tasks) for v in ANYIO_TASKS) > max(
        per_task(v, tasks) for v in ASYNCIO_TASKS
    )


def test_cost_per_task_grows_with_the_number_of_tasks() -> None:
    for variant in ASYNCIO_TASKS + ANYIO_TASKS:
        assert per_task(variant, 100_000) > per_task(variant, 10), variant


def test_a_task_is_small_next_to_a_network_call() -> None:
    """ "at most a few percent of a 1 ms call, and less than a thousandth of the
    50 ms to 200 ms calls on the pattern pages", at every fan-out measured."""
    worst_us = max(per_task(v, n) for v in ASYNCIO_TASKS + ANYIO_TASKS for n in bench.TASK_COUNTS)
    assert worst_us < 0.05 * 1_000
    assert worst_us < 0.001 * 50_000
