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
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this run that all its workers share.

    Under xdist a worker's base folder is `<run's folder>/popen-gwN`; without
    xdist it is the run's folder itself (its parent holds earlier runs). The
    folder's name is checked too: a pytest started from inside a worker
    inherits its PYTEST_XDIST_WORKER and must still keep to its own folder.
    """
    base = tmp_path_factory.getbasetemp()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return base.parent if worker and base.name == f"popen-{worker}" else base


@dataclass(frozen=True)
class _Failed:
    """What `once` saves when the work raised: later callers say so, not redo it."""

    worker: str
    error: str


class SharedWorkFailed(Exception):
    """The shared work raised in another worker of this run."""


def once(tmp_path_factory: pytest.TempPathFactory, name: str, work: Callable[[Path], T]) -> T:
    """`work(folder)` run once in this pytest run; every worker gets its result.

    `folder` is an empty folder for the work's files (a built site), shared
    with the other workers, which only read it. The result is pickled. If
    the work raises, the error is raised here and saved: the workers that ask
    later raise `SharedWorkFailed`, naming it, instead of running the work
    again. A skip or a pytest failure is not an error of the work, and is
    not saved.
    """
    shared = run_folder(tmp_path_factory)
    saved = shared / f"{name}.pickle"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if saved.exists():
            loaded: T | _Failed = pickle.loads(saved.read_bytes())
            if isinstance(loaded, _Failed):
                raise SharedWorkFailed(
                    f"{name} failed in worker {loaded.worker}, which reported it: {loaded.error}"
                )
            return loaded
        folder = shared / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        try:
            result = work(folder)
        except Exception as error:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            _save(saved, _Failed(worker, f"{type(error).__name__}: {error}".splitlines()[0]))
            raise
        _save(saved, result)
        return result


def _save(saved: Path, result: object) -> None:
    """Write the pickle whole or not at all: a worker can be killed mid-write."""
    partial = saved.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(result))
    os.replace(partial, saved)
