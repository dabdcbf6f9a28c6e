"""The cost page shows what examples/parallelism_cost.py measured, and its prose holds.

The benchmark itself is not run here (`make bench` runs it); these tests
check that the table, the chart and the statements on the page agree with
the committed figures.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

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
def test_taskgroup_costs_no_more_than_gather(tasks: int) -> None:
    """ "within a tenth of each other, and with 100,000 tasks the task group is cheaper"."""
    assert per_task("taskgroup", tasks) < 1.1 * per_task("gather", tasks)
    if tasks == 100_000:
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
    """ "under a tenth of a 1 ms call, and under half a percent of the 50 ms to
    200 ms calls on the pattern pages", at every fan-out measured."""
    worst_us = max(per_task(v, n) for v in ASYNCIO_TASKS + ANYIO_TASKS for n in bench.TASK_COUNTS)
    assert worst_us < 0.1 * 1_000
    assert worst_us < 0.005 * 50_000


# --- Each Python, uvloop and eager tasks ---------------------------------------------------

RUNS = bench.python_runs(FIGURES)
SUPPORTED_HERE = ("3.11", "3.12", "3.13")  # the Pythons this machine kind has


def minor(run: dict[str, Any]) -> str:
    return ".".join(str(run["python"]).split(".")[:2])


def test_each_supported_python_was_measured() -> None:
    assert {minor(run) for run in RUNS} >= set(SUPPORTED_HERE)


@pytest.mark.parametrize("run", RUNS, ids=minor)
def test_every_loop_start_and_workload_was_measured(run: dict[str, Any]) -> None:
    by = FIGURES["by_python"]
    measured = {(row["loop"], row["start"], row["workload"]) for row in run["results"]}
    starts = [start for start in by["starts"] if start == "lazy" or bench.has_eager(run["python"])]
    wanted = {
        (loop, start, workload)
        for loop in by["loops"]
        for start in starts
        for workload in by["workloads"]
    }
    assert measured == wanted


def test_page_table_by_python_is_the_measured_figures() -> None:
    page = bench.PAGE_PATH.read_text()
    block = bench.BY_PYTHON_BLOCK.search(page)
    assert block, "the page lost its <!-- by-python:start/end --> markers"
    assert block[0] == (
        f"<!-- by-python:start -->\n{bench.by_python_block(FIGURES)}\n<!-- by-python:end -->"
    ), "the per-Python table differs from docs/assets/parallelism-cost.json: run `make bench`"


def test_python_chart_is_drawn_from_the_measured_figures() -> None:
    assert bench.PYTHON_SVG_PATH.read_text() == bench.python_svg(FIGURES), (
        "docs/assets/parallelism-cost-python.svg differs from the JSON: "
        "run `.venv/bin/python examples/parallelism_cost.py --render-only`"
    )


@pytest.mark.parametrize("chart", [bench.SVG_PATH, bench.PYTHON_SVG_PATH], ids=lambda p: p.name)
def test_chart_has_a_text_alternative(chart: Path) -> None:
    text = chart.read_text()
    assert re.search(r'role="img" aria-labelledby="\w+ \w+"', text)
    assert re.search(r'<title id="\w+">[^<]+</title>', text)
    assert re.search(r'<desc id="\w+">[^<]+</desc>', text)
    assert not re.search(r"(?:href|src|url)\s*[=(]\s*[\"']?(?:https?:)?//", text)


def test_page_shows_the_python_chart() -> None:
    assert "(assets/parallelism-cost-python.svg)" in bench.PAGE_PATH.read_text()


def eager_pairs() -> list[tuple[str, str]]:
    """(Python, loop) pairs where eager tasks ran."""
    return [
        (run["python"], loop)
        for run in RUNS
        for loop in FIGURES["by_python"]["loops"]
        if bench.has_eager(run["python"])
        and bench.by_python_row(run, loop, "eager", "cache-hit")["per_task_us"] is not None
    ]


def run_of(python: str) -> dict[str, Any]:
    return next(run for run in RUNS if run["python"] == python)


@pytest.mark.parametrize(("python", "loop"), eager_pairs())
def test_an_eager_cache_hit_costs_a_fraction_of_a_lazy_one(python: str, loop: str) -> None:
    run = run_of(python)
    eager = bench.by_python_figure(run, loop, "eager", "cache-hit")
    lazy = bench.by_python_figure(run, loop, "lazy", "cache-hit")
    assert eager < 0.5 * lazy  # "less than half of what it costs started lazily"


@pytest.mark.parametrize(("python", "loop"), eager_pairs())
def test_eager_start_saves_less_on_a_task_that_waits(python: str, loop: str) -> None:
    run = run_of(python)

    def saving(workload: str) -> float:
        lazy = bench.by_python_figure(run, loop, "lazy", workload)
        return lazy - bench.by_python_figure(run, loop, "eager", workload)

    assert saving("waits") < saving("cache-hit")


@pytest.mark.parametrize("run", RUNS, ids=minor)
def test_uvloop_makes_a_lazy_task_cheaper(run: dict[str, Any]) -> None:
    uvloop = bench.by_python_figure(run, "uvloop", "lazy", "cache-hit")
    assert uvloop < bench.by_python_figure(run, "asyncio", "lazy", "cache-hit")


def test_the_eager_failure_on_uvloop_is_the_one_the_page_describes() -> None:
    """ "Eager tasks on uvloop 0.23 fail on Python 3.13.0 ... runs eager tasks on 3.12"."""
    page = bench.PAGE_PATH.read_text()
    assert "**Eager tasks on uvloop 0.23 fail on Python 3.13.0.**" in page
    failed = {
        (run["python"], row["loop"], row["start"])
        for run in RUNS
        for row in run["results"]
        if row["per_task_us"] is None
    }
    assert ("3.13.0", "uvloop", "eager") in failed
    assert all(loop == "uvloop" and start == "eager" for _, loop, start in failed)
    assert not any(python.startswith("3.12.") for python, _, _ in failed)
    assert (
        "eager_start" in bench.by_python_row(run_of("3.13.0"), "uvloop", "eager", "waits")["error"]
    )
    assert {run["uvloop"] for run in RUNS} == {"0.23.0"}
