"""How fast the suite is: each figure against its budget, written to docs/testing.md.

    .venv/bin/python -m tests.bench           # everything (several minutes)
    .venv/bin/python -m tests.bench --quick   # without the two whole-suite runs

Measures, on this machine as it is now:

- every virtual run of every block, in this process: CPU time against the
  simulated time the runs cover;
- the fault matrix, in this process;
- `make build` (a strict build without the rendered-HTML link check), three
  times, the median;
- `make test` after the first install, and the lanes inside it (real-clock
  runs, browser tests), from pytest's JUnit report;
- `make test` in a fresh clone, installs included.

Each `make test` figure also gives the CPU time of every process the run
started (Chromium, servers and workers included, as far as they are reaped):
divided by the cores, that is the shortest the run could be here, whatever
the load.

Prints one line per figure with its budget, rewrites the speed table on
docs/testing.md, and exits 1 if a figure is over its budget. The test suite
never compares a time with a budget: this does, on purpose, outside it.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tests import figures
from tests.harness import ROOT


@dataclass(frozen=True)
class Figure:
    what: str
    measured: float  # seconds
    budget: float | None  # seconds; None: reported, not budgeted
    detail: str = ""

    @property
    def within(self) -> bool:
        return self.budget is None or self.measured <= self.budget

    @property
    def verdict(self) -> str:
        if self.budget is None:
            return "no budget"
        return "within" if self.within else "OVER"

    def line(self) -> str:
        budget = "no budget" if self.budget is None else f"budget {self.budget:.0f} s"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.what}: {self.measured:.1f} s, {budget}: {self.verdict}{detail}"

    def row(self) -> str:
        detail = f"; {self.detail}" if self.detail else ""
        budget = "" if self.budget is None else f"{self.budget:.0f} s"
        return f"| {self.what} | {budget} | {self.measured:.1f} s{detail} | {self.verdict} |"


def virtual_runs() -> Figure:
    from examples import timeline
    from tests import faultmatrix
    from tests.harness import clocks_for, run_block

    runs, simulated_ms = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = time.process_time(), time.perf_counter()
        for example in faultmatrix.all_examples():
            for clock in clocks_for(example):
                if clock == "real":
                    continue
                try:
                    run_block(example, clock, Path(tmp))
                except AssertionError:
                    pass  # the suite reports it; the time still counts
                runs += 1
                simulated_ms += sum(opened.total_ms for opened in timeline.opened)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    simulated = simulated_ms / 1000
    return Figure(
        f"All {runs} virtual runs, in one process (CPU time)",
        cpu,
        10,
        f"{wall:.1f} s wall for {simulated:.1f} s of simulated time, "
        f"{simulated / cpu:.0f} times faster than real",
    )


def fault_runs() -> Figure:
    from tests import faultmatrix

    with tempfile.TemporaryDirectory() as tmp:
        bases = faultmatrix.baselines(faultmatrix.all_examples())
        cases = faultmatrix.cases(bases)
        cpu = time.process_time()
        for case in cases:
            faultmatrix.run_case(case, Path(tmp))
        cpu = time.process_time() - cpu
    return Figure(f"The {len(cases)} fault runs, in one process (CPU time)", cpu, 15)


def site_build() -> Figure:
    from tests.sitebuild import build_site

    walls, cpus = [], []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as tmp:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            result = build_site(Path(tmp) / "site", check_rendered_links=False)
            walls.append(time.perf_counter() - started)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if result.returncode != 0:
                raise SystemExit(f"the site does not build:\n{result.stderr}")
    return Figure(
        "`make build`, CPU time (median of 3)",
        statistics.median(cpus),
        4,
        f"{statistics.median(walls):.1f} s wall",
    )


@dataclass(frozen=True)
class MakeTestRun:
    """One `make test`: its verdict, its output, and what it cost."""

    passed: bool
    wall: float  # seconds
    cpu: float  # seconds of CPU, every process it started and reaped
    output: str
    lanes: dict[str, float]  # seconds per lane, summed over the workers

    @property
    def summaries(self) -> list[str]:
        """pytest's summary line of each of its runs, and the version lanes' lines."""
        return [
            line.strip("= ").strip()
            for line in self.output.splitlines()
            if re.search(r"\b(passed|failed|error)\b.* in [\d.]+s", line)
        ]

    @property
    def floor(self) -> str:
        # CPU time barely depends on the machine's load: over the cores, it is
        # the least wall time any run of the same suite can take here.
        cores = os.cpu_count() or 1
        return f"{self.cpu:.0f} s of CPU, so at least {self.cpu / cores:.0f} s on {cores} cores"


def run_make_test(where: Path) -> MakeTestRun:
    """Run `make test` in `where`, with a JUnit report of each pytest run in it."""
    reports = Path(tempfile.mkdtemp())
    env = {**os.environ, "JUNIT_DIR": str(reports)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        ["make", "test"], cwd=where, env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lanes: dict[str, float] = {}
    for report in reports.glob("junit-*.xml"):
        for case in ET.parse(report).getroot().iter("testcase"):
            lane = _lane(f"{case.get('classname', '')}::{case.get('name', '')}")
            if lane:
                lanes[lane] = lanes.get(lane, 0.0) + float(case.get("time", 0))
    shutil.rmtree(reports, ignore_errors=True)
    output = result.stdout + result.stderr
    return MakeTestRun(result.returncode == 0, wall, cpu, output, lanes)


def make_test(where: Path, what: str, budget: float) -> list[Figure]:
    """Run `make test` in `where`; the whole, and its lanes from the JUnit reports."""
    run = run_make_test(where)
    if not run.passed:
        print(run.output[-6000:])
        raise SystemExit(f"`make test` failed in {where}")
    found = [Figure(what, run.wall, budget, run.floor)]
    for lane, seconds in sorted(run.lanes.items()):
        lane_budget = 45 if lane.startswith("The real-stack lane") else None
        found.append(Figure(f"{lane}, summed over the workers", seconds, lane_budget))
    return found


@functools.cache
def _stack_items() -> frozenset[str]:
    from tests.harness import Settings
    from tests.test_docs import EXAMPLES

    return frozenset(f"[{ex}:real]" for ex in EXAMPLES if Settings.of(ex).stack == "real")


def _lane(name: str) -> str | None:
    """Which lane of the suite a JUnit test case belongs to, if one is reported."""
    if any(name.endswith(item) for item in _stack_items()) or any(
        module in name for module in ("test_postgres", "test_serve", "test_real_http")
    ):
        return "The real-stack lane (PostgreSQL, uvicorn: blocks and tests)"
    if name.endswith(":real]"):
        return "Real-clock runs of the other blocks"
    if ".browser." in name:
        return "Browser tests"
    return None


def fresh_clone() -> Figure:
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        try:
            return make_test(clone, "`make test` in a fresh clone, installs included", 240)[0]
        finally:
            shutil.rmtree(clone, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the two whole-suite runs")
    options = parser.parse_args()
    load = os.getloadavg()[0]
    measured = [virtual_runs(), fault_runs(), site_build()]
    if not options.quick:
        measured += make_test(ROOT, "`make test` after the first install", 90)
        measured.append(fresh_clone())
    for figure in measured:
        print(figure.line())
    header = (
        f"Measured by `make bench` on {time.strftime('%Y-%m-%d')}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, load average {load:.1f} "
        "at the start."
    )
    table = "\n".join(
        [header, "", "| What | Budget | Measured | |", "|------|-------:|---------|---|"]
        + [figure.row() for figure in measured]
    )
    figures.write_section(figures.TESTING_PAGE, "suite speed", table)
    print(f"wrote the speed table on {figures.TESTING_PAGE.relative_to(ROOT)}")
    return 0 if all(figure.within for figure in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
