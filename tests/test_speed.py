"""The suite stays fast enough to run on every change.

Budgets are for this project's reference machine (2 cores). Each test
measures once and fails with the measured figure when a budget is broken,
so a slow block or a slow page shows up in review, not weeks later.

Budgets are checked against CPU time, which is the wall time of these
single-threaded runs on an idle machine, and unlike wall time it does not
grow when something else keeps the machine busy. Both are printed.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

from examples import timeline
from tests import faultmatrix
from tests.harness import DOCS, clocks_for, run_block
from tests.pagecheck import table_value
from tests.sitebuild import build_site

# Every virtual run (asyncio, and Trio for AnyIO blocks) of every block, as
# tests/test_docs.py runs them. The runs cover minutes of simulated time; on
# a virtual clock that must cost seconds.
VIRTUAL_RUNS_BUDGET_SECONDS = 10.0
# `mkdocs build --strict` of the whole site, as `make build` runs it (without
# the rendered-HTML link check, which test builds add and which about
# doubles the time).
SITE_BUILD_BUDGET_SECONDS = 3.0


def test_virtual_runs_of_every_block_fit_the_budget(tmp_path: Path) -> None:
    runs = 0
    simulated_ms = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for example in faultmatrix.all_examples():
        for clock in clocks_for(example):
            if clock == "real":
                continue
            try:
                run_block(example, clock, tmp_path)
            except AssertionError:
                pass  # tests/test_docs.py reports it; the time still counts
            runs += 1
            simulated_ms += sum(opened.total_ms for opened in timeline.opened)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    report = (
        f"{runs} virtual runs took {cpu:.2f} s of CPU ({wall:.2f} s wall) for "
        f"{simulated_ms / 1000:.1f} s of simulated time (ratio {simulated_ms / 1000 / cpu:.1f}x)"
    )
    print(report)
    assert cpu < VIRTUAL_RUNS_BUDGET_SECONDS, f"{report}; budget {VIRTUAL_RUNS_BUDGET_SECONDS} s"
    # The testing page states how much simulated time the runs cover.
    label = "Simulated time covered by the virtual runs"
    assert table_value(DOCS / "testing.md", label) == f"{simulated_ms / 1000:.1f} s"


def test_site_build_fits_the_budget(tmp_path: Path) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = build_site(tmp_path / "site", check_rendered_links=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert result.returncode == 0, result.stderr
    report = f"`make build` (mkdocs build --strict) took {cpu:.2f} s of CPU ({wall:.2f} s wall)"
    print(report)
    assert cpu < SITE_BUILD_BUDGET_SECONDS, f"{report}; budget {SITE_BUILD_BUDGET_SECONDS} s"
