"""Work that one pytest run does once, for all its pytest-xdist workers.

Each xdist worker is a process of its own, so a session-scoped fixture runs
once per worker: four workers would build the site four times. `once` runs
the work in the first worker that asks, saves what it returned in a folder
that only this run's workers share, and gives the others that copy.

Nothing is kept between runs: every run (and every worker of it) sees the
files of that run only, so a saved result is always of the tree under test.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this run that all its workers share.

    Under xdist a worker's base folder is `<run's folder>/popen-gwN`; without
    xdist it is the run's folder itself (its parent holds earlier runs).
    """
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(tmp_path_factory: pytest.TempPathFactory, name: str, work: Callable[[Path], T]) -> T:
    """`work(folder)` run once in this pytest run; every worker gets its result.

    `folder` is an empty folder for the work's files (a built site), shared
    with the other workers, which only read it. The result is pickled. If
    the work raises, nothing is saved and the next worker that asks tries again.
    """
    shared = run_folder(tmp_path_factory)
    saved = shared / f"{name}.pickle"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if saved.exists():
            loaded: T = pickle.loads(saved.read_bytes())
            return loaded
        folder = shared / name
        shutil.rmtree(folder, ignore_errors=True)  # what a worker that failed left
        folder.mkdir()
        result = work(folder)
        saved.write_bytes(pickle.dumps(result))
        return result
