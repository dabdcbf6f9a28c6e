"""Run the suite's `every_python` tests on each other Python 3.11+ on this machine.

    make test-versions                   # what `make test` runs after the main suite
    make update-examples                 # also records blocks restricted to other Pythons
    make bench                           # measures the cost page's figures on each of them

The main suite runs on the Python the Makefile picked (`.venv`). Every other
Python found here, by name on PATH (`python3.12`) or among pyenv's versions,
gets a lane: its own venv (`.venv-3.12`, made by `make .venv-3.12/.ready`) and
one pytest run of the tests marked `every_python`: every block's virtual runs
and the unit tests of examples/. The lanes run in parallel, sharing the
machine's cores as pytest-xdist workers, and each prints one summary line.

With REQUIRE_PYTHONS="3.11 3.12 3.13" (CI), a listed Python that is missing
is a failure, not a skip. VERSION_LANES=0 turns the lanes off, for a CI
matrix that runs the whole suite on each Python itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The Pythons a lane may run on: the project's requires-python onwards.
VERSIONS = ("3.11", "3.12", "3.13", "3.14", "3.15")
MAIN = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Lane:
    version: str  # "3.12"
    interpreter: str  # the Python the lane's venv is made from

    @property
    def venv(self) -> Path:
        return ROOT / f".venv-{self.version}"


def runs_as(interpreter: str, version: str) -> bool:
    """Whether `interpreter` starts, is that version and can make a venv with pip.

    A pyenv shim may exist for a version that is not selected, and then fails;
    a distribution's Python may lack ensurepip (Debian's without python3-venv).
    """
    check = (
        "import sys, ensurepip, venv; "
        f"sys.exit(f'{{sys.version_info[0]}}.{{sys.version_info[1]}}' != '{version}')"
    )
    try:
        result = subprocess.run(
            [interpreter, "-c", check], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def pyenv_versions_dir() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        root = found.stdout.strip()
    return Path(root) / "versions" if root else None


def find_python(version: str) -> str | None:
    """An interpreter of this version: on PATH by name, else the newest pyenv install."""
    candidates: list[str] = []
    if on_path := shutil.which(f"python{version}"):
        candidates.append(on_path)
    if (versions := pyenv_versions_dir()) is not None and versions.is_dir():
        installed = sorted(
            versions.glob(f"{version}.*/bin/python{version}"),
            key=lambda path: [int(part) for part in path.parts[-3].split(".") if part.isdigit()],
            reverse=True,
        )
        candidates.extend(str(path) for path in installed)
    return next((path for path in candidates if runs_as(path, version)), None)


def prepare(lane: Lane) -> None:
    """Create or refresh the lane's venv the way make creates .venv."""
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            f".venv-{lane.version}/.ready",
            f"LANE_PYTHON={lane.interpreter}",
        ],
        cwd=ROOT,
        check=True,
    )


def lane_workers(lanes: int) -> list[str]:
    """pytest-xdist options that share this machine's cores among the lanes.

    The lanes run at the same time; one worker per lane when there are no
    more cores than lanes, because each worker collects the whole suite again.
    """
    workers = len(os.sched_getaffinity(0)) // max(lanes, 1)
    return ["-n", str(workers)] if workers > 1 else ["-p", "no:xdist"]


def pytest_command(lane: Lane, update: bool, lanes: int = 1) -> list[str]:
    python = str(lane.venv / "bin" / "python")
    if update:
        # Records only the blocks whose oldest allowed Python is this one (test_docs.py).
        return [
            python,
            "-m",
            "pytest",
            "tests/test_docs.py",
            "-m",
            "every_python",
            "-k",
            "test_block_runs",
            "--update-examples",
            "-p",
            "no:xdist",
            "-q",
        ]
    return [python, "-m", "pytest", "-m", "every_python", *lane_workers(lanes), "-q"]


def summary_line(output: str) -> str:
    """pytest's last line ("412 passed, 3 skipped in 40.12s"), without its padding."""
    lines = [line.strip("= ").strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def other_lanes() -> list[Lane]:
    """A lane for each Python found here other than the one running this."""
    return [
        Lane(version, interpreter)
        for version in VERSIONS
        if version != MAIN and (interpreter := find_python(version))
    ]


def print_bench_args() -> int:
    lanes = other_lanes()
    for lane in lanes:
        # make's own output goes to stderr: stdout carries only the arguments.
        subprocess.run(
            [
                "make",
                "--no-print-directory",
                f".venv-{lane.version}/.ready",
                f"LANE_PYTHON={lane.interpreter}",
            ],
            cwd=ROOT,
            check=True,
            stdout=sys.stderr,
        )
    print(" ".join(f"--other-python {lane.venv / 'bin' / 'python'}" for lane in lanes))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--update-examples",
        action="store_true",
        help="record the outputs of blocks restricted to a Python other than the main one",
    )
    parser.add_argument(
        "--bench-args",
        action="store_true",
        help="only make the lanes' venvs, then print `--other-python PATH` for each "
        "(make bench passes them to examples/parallelism_cost.py)",
    )
    options = parser.parse_args()
    if options.bench_args:
        return print_bench_args()  # make bench measures every Python, lanes on or off
    required = os.environ.get("REQUIRE_PYTHONS", "").split()
    if os.environ.get("VERSION_LANES") == "0":
        print("version lanes: off (VERSION_LANES=0)")
        if required:
            print("REQUIRE_PYTHONS asks for lanes that VERSION_LANES=0 turns off: unset one")
            return 1
        return 0
    lanes = other_lanes()
    found = {MAIN, *(lane.version for lane in lanes)}
    missing = [version for version in required if version not in found]
    for version in VERSIONS:
        if version in missing:
            print(f"Python {version}: not on this machine, and REQUIRE_PYTHONS requires it")
        elif version not in found:
            print(f"Python {version}: not on this machine, skipped")
    for lane in lanes:
        prepare(lane)

    ordered = sorted(found, key=lambda v: tuple(int(part) for part in v.split(".")))
    # PYTEST_ADDOPTS and JUNIT_DIR are the main run's: the lanes' time is
    # reported by this command, not counted in the main run's lanes.
    env = {**os.environ, "PYTHON_LANES": " ".join(ordered), "PYTEST_ADDOPTS": ""}
    env.pop("JUNIT_DIR", None)
    started = time.monotonic()
    failed = False
    with tempfile.TemporaryDirectory(prefix="lanes-") as logs:
        running = []
        for lane in lanes:
            log = open(Path(logs) / f"{lane.version}.log", "w+")
            command = pytest_command(lane, options.update_examples, len(lanes))
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
            running.append((lane, process, log))
            if options.update_examples:
                process.wait()  # one at a time: each lane rewrites the pages it records
        for lane, process, log in running:
            code = process.wait()
            log.seek(0)
            output = log.read()
            log.close()
            if code != 0:
                failed = True
                print(output)
            interpreter = subprocess.run(
                [
                    str(lane.venv / "bin" / "python"),
                    "-c",
                    "import platform; print(platform.python_version())",
                ],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            verdict = "ok" if code == 0 else f"FAILED (exit {code})"
            print(f"Python {interpreter} ({lane.venv.name}): {summary_line(output)}  {verdict}")
    print(f"version lanes: {len(lanes)} other Python(s) in {time.monotonic() - started:.0f} s")
    if missing:
        print(
            f"REQUIRE_PYTHONS asks for Python {', '.join(missing)}, not found here: "
            "install it (on PATH as pythonX.Y, or with pyenv)"
        )
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
