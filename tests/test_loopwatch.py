"""What the loop watch counts as the machine's delay and as the block's own CPU."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import loopwatch


def schedstat_reported() -> bool:
    """Whether the kernel counts this thread's time on a core (then its waits too)."""
    try:
        return int(Path("/proc/thread-self/schedstat").read_text().split()[0]) > 0
    except (OSError, IndexError, ValueError):
        return False


needs_schedstat = pytest.mark.skipif(
    not schedstat_reported(),
    reason="this kernel does not report how long a thread waits for a core",
)


@contextlib.contextmanager
def one_core_shared_with_a_spinner() -> Iterator[None]:
    """This thread and a busy process on one core, so each waits for the other."""
    core = min(os.sched_getaffinity(0))
    saved = os.sched_getaffinity(0)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(spinner.pid, {core})
        os.sched_setaffinity(0, {core})
        yield
    finally:
        os.sched_setaffinity(0, saved)
        spinner.kill()
        spinner.wait()


def spin(cpu_seconds: float) -> None:
    """Compute for this long in this thread's CPU time, whatever the load."""
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        pass


@needs_schedstat
def test_a_wait_for_a_core_that_no_timer_sees_is_the_machines_delay() -> None:
    """Preempted where no loop step and no timer is (here, with no loop at all)."""
    watch = loopwatch.LoopWatch(loopwatch.Located("<none>", str), real_clock=True)
    with one_core_shared_with_a_spinner(), loopwatch.watching(watch):
        spin(0.05)
    # Two busy processes on one core take turns: 50 ms of CPU takes about
    # 100 ms, and the kernel counts the other half as this thread's wait.
    assert watch.cpu_ms >= 50, (watch.lag_ms, watch.cpu_ms)
    assert watch.lag_ms >= 20, (watch.lag_ms, watch.cpu_ms)


def test_the_blocks_own_cpu_is_counted_and_imports_are_not() -> None:
    watch = loopwatch.LoopWatch(loopwatch.Located("<none>", str), real_clock=True)
    with loopwatch.watching(watch):
        spin(0.03)
        watch._excluded_cpu += 0.02  # as if 20 ms of it had been spent importing
    assert 10 <= watch.cpu_ms <= 15, watch.cpu_ms


def test_on_a_virtual_clock_nothing_is_counted() -> None:
    watch = loopwatch.LoopWatch(loopwatch.Located("<none>", str), real_clock=False)
    with loopwatch.watching(watch):
        spin(0.03)
    assert (watch.lag_ms, watch.cpu_ms) == (0, 0)


def test_a_reading_gets_the_lag_its_step_had_once_it_ended() -> None:
    """A step kept off the core is counted as it ends, after the readings taken in it."""
    watch = loopwatch.LoopWatch(loopwatch.Located("<none>", str), real_clock=True)
    watch._step_end_lags = [0.001, 0.004]
    inside = loopwatch.ClockReading(0.0, 0.0, 0.001, 0.0, 0.0, step=1)
    outside = loopwatch.ClockReading(0.0, 0.0, 0.001, 0.0, 0.0)
    assert watch.settled(inside).lag_after == 0.004
    assert watch.settled(outside).lag_after == 0.001
