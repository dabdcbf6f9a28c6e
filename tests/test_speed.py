"""The suite stays fast enough to run on every change.

Budgets are for this project's reference machine (2 cores). Each test
measures in-process, once, and fails with the measured figure when a budget
is broken, so a slow block or a slow page shows up in review, not weeks later.
"""

from __future__ import annotations

import time
from pathlib import Path

from examples import timeline
from tests import faultmatrix
from tests.harness import clocks_for, run_block
from tests.sitebuild import build_site

# Every virtual run (asyncio, and Trio for AnyIO blocks) of every block, as
# tests/test_docs.py runs them. The runs cover minutes of simulated time; on
# a virtual clock that must cost seconds.
VIRTUAL_RUNS_BUDGET_SECONDS = 10.0
# `mkdocs build --strict` of the whole site, as `make build` runs it.
SITE_BUILD_BUDGET_SECONDS = 3.0


def test_virtual_runs_of_every_block_fit_the_budget(tmp_path: Path) -> None:
    runs = 0
    simulated_ms = 0
    started = time.perf_counter()
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
    wall = time.perf_counter() - started
    report = (
        f"{runs} virtual runs took {wall:.2f} s of wall time for {simulated_ms / 1000:.1f} s "
        f"of simulated time (ratio {simulated_ms / 1000 / wall:.1f}x)"
    )
    print(report)
    assert wall < VIRTUAL_RUNS_BUDGET_SECONDS, f"{report}; budget {VIRTUAL_RUNS_BUDGET_SECONDS} s"


def test_site_build_fits_the_budget(tmp_path: Path) -> None:
    started = time.perf_counter()
    result = build_site(tmp_path / "site")
    wall = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    print(f"mkdocs build --strict took {wall:.2f} s")
    assert wall < SITE_BUILD_BUDGET_SECONDS, (
        f"mkdocs build --strict took {wall:.2f} s; budget {SITE_BUILD_BUDGET_SECONDS} s"
    )
