"""Run the example suite many times, then the real-clock items under load.

    .venv/bin/python tests/determinism.py            # 20 runs, then 3 loaded runs
    .venv/bin/python tests/determinism.py --runs 5 --loaded-runs 1

1. `pytest tests/test_docs.py` (every block on every clock, and lint) runs
   `--runs` times in a row; a run passes when pytest exits 0. A flaky block
   shows up here as a pass count below the run count.
2. One busy process (`while True: pass`) keeps a core saturated while the
   real-clock items (`-k real`) run `--loaded-runs` times, to check that
   the real-clock tolerance holds on a busy machine. The busy process is
   stopped by its process id afterwards.

Prints one line per run and a summary; `--json PATH` also writes the figures.
This is not part of `make test`: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "tests/test_docs.py", "-q", "-p", "no:randomly"]


@dataclass
class Run:
    seconds: float
    passed: bool
    summary: str  # pytest's last line, e.g. "311 passed in 30.1s"
    failures: list[str] = field(default_factory=list)


def run_pytest(*args: str) -> Run:
    started = time.perf_counter()
    result = subprocess.run(
        [*PYTEST, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "COLUMNS": "250"},
        check=False,
    )
    seconds = time.perf_counter() - started
    lines = result.stdout.strip().splitlines()
    failures = [line.split(" ", 1)[1] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return Run(seconds, result.returncode == 0, lines[-1] if lines else "", failures)


def series(label: str, count: int, *args: str) -> list[Run]:
    runs = []
    for number in range(1, count + 1):
        run = run_pytest(*args)
        runs.append(run)
        state = "pass" if run.passed else "FAIL"
        line = f"{label} {number:>2}/{count}: {state} {run.seconds:6.1f} s  {run.summary}"
        print(line, flush=True)
        for failure in run.failures:
            print(f"    {failure}", flush=True)
    return runs


def describe(label: str, runs: list[Run]) -> dict[str, object]:
    seconds = [run.seconds for run in runs]
    figures = {
        "runs": len(runs),
        "passed": sum(run.passed for run in runs),
        "min_s": round(min(seconds), 1),
        "median_s": round(statistics.median(seconds), 1),
        "max_s": round(max(seconds), 1),
        "failures": sorted({failure for run in runs for failure in run.failures}),
    }
    print(
        f"{label}: {figures['passed']}/{figures['runs']} passed; wall time "
        f"min {figures['min_s']} s, median {figures['median_s']} s, max {figures['max_s']} s"
    )
    return figures


def items_in(runs: list[Run]) -> int:
    match = re.search(r"(\d+) passed", runs[0].summary) if runs else None
    return int(match[1]) if match else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--loaded-runs", type=int, default=3)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()

    repeated = series("suite", options.runs)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = series("real clock, one core busy", options.loaded_runs, "-k", "real")
    finally:
        busy.kill()
        busy.wait()

    print()
    figures = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "suite_items": items_in(repeated),
        "suite": describe(f"tests/test_docs.py x{options.runs}", repeated),
        "loaded_real_clock": describe("real-clock items with one core busy", loaded),
    }
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2) + "\n")
    all_runs = repeated + loaded
    return 0 if all(run.passed for run in all_runs) else 1


if __name__ == "__main__":
    sys.exit(main())
