"""`make test` in a fresh clone, three times in a row, with both cores kept busy.

    .venv/bin/python -m tests.loaded             # 3 runs, 2 busy processes
    .venv/bin/python -m tests.loaded --runs 1 --busy 1

Proves that the suite's verdict does not depend on the machine's load: the
blocks' blocking-call and CPU checks do not read a clock, and real-clock
figures are judged net of the delay the machine put on each run. Starts one
CPU-bound process per core (`while True: pass`), clones this repository into
a temporary folder, runs `make test` there `--runs` times (the first run also
installs everything), stops the busy processes by their process ids (also if
a run fails or the command is interrupted), prints one line per run, and
writes the result to docs/testing.md. Exits 1 if any run failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests import bench, figures
from tests.harness import ROOT


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2)
    options = parser.parse_args()

    # A `kill` of this command must stop the busy processes and remove the
    # clone too: make SIGTERM unwind through the `finally` below, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(options.busy)
    ]
    results: list[bench.MakeTestRun] = []
    clone = Path(tempfile.mkdtemp()) / "clone"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for number in range(1, options.runs + 1):
            run = bench.run_make_test(clone)
            results.append(run)
            state = "pass" if run.passed else "FAIL"
            print(f"run {number}/{options.runs}: {state} in {run.wall:.0f} s ({run.floor})")
            print("\n".join(f"    {summary}" for summary in run.summaries), flush=True)
            if not run.passed:
                lines = run.output.splitlines()
                failed = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
                print("\n".join(failed or lines[-40:]), flush=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
        shutil.rmtree(clone.parent, ignore_errors=True)

    passed = sum(run.passed for run in results)
    stack = "The real-stack lane"
    rows = "\n".join(
        f"| {n} | {'passed' if run.passed else '**failed**'} | {run.wall:.0f} s | "
        f"{run.cpu:.0f} s | "
        + next((f"{s:.0f} s" for lane, s in run.lanes.items() if lane.startswith(stack)), "")
        + f" | {'<br>'.join(run.summaries)} |"
        for n, run in enumerate(results, start=1)
    )
    figures.write_section(
        figures.TESTING_PAGE,
        "loaded runs",
        f"Run by `make test-loaded` on {time.strftime('%Y-%m-%d')} at commit {commit}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, {options.busy} busy "
        f"processes: {passed} of {len(results)} runs passed.\n\n"
        "| Run | Verdict | Wall time | CPU time | Real-stack lane | pytest's summaries |\n"
        "|----:|---|---:|---:|---:|---|\n" + rows,
    )
    print(f"{passed}/{len(results)} runs passed with {options.busy} busy processes")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
