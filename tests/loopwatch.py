"""Watch the event loop while a block runs, in ways no machine load can change.

On the thread that runs the event loop, the watch measures:

- **Blocking calls.** `blockbuster` replaces `time.sleep`, blocking socket and
  file I/O, lock waits and the rest of its list with versions that raise
  `BlockingError` when called on a thread with a running asyncio loop; here it
  also watches Trio's thread. Each call is reported at the block's line that
  made it, even when the block catches the error.
- **CPU per loop step.** Each step (an asyncio callback or a Trio task step)
  is timed in thread CPU time, which does not grow when other processes
  compete for the cores. A step that uses more than `STEP_CPU_LIMIT_MS` holds
  the loop: nothing else runs meanwhile. A profiling timer (SIGPROF, which
  counts this process's CPU time) samples where the step spends it, so the
  report names the line. Time spent importing modules is not the block's,
  nor is the watch's own work (its probe, its bookkeeping around each step).
- **Machine lag** (real clock only). The loop's timers, and a probe timer the
  watch adds every few milliseconds, fire late when the machine does not give
  the process a core. The lag is the time during which some timer was overdue
  (the probe: by more than `TIMER_GRACE_MS`), less the CPU the loop's thread
  spent in that time: that part is the block's own work, not the machine's.
  A step that took longer than its CPU time while the thread was preempted,
  or while another thread of the process ran, was kept off the core: that
  time counts too. Where Linux reports it, the kernel's own count of the
  time the thread waited for a core (`/proc/thread-self/schedstat`) is a
  floor for the lag: it sees a preemption wherever it lands, also between
  two steps, where no timer was due.
- **The block's own CPU** (real clock only): the loop thread's CPU time while
  the block ran, less imports and the watch's own work. A virtual clock
  stands still while code runs, so the CPU spent between two readings of the
  clock is in the real figure they make and in no recorded one; and it
  grows with load, since a core shared with other work runs the same code
  slower.
- **Clock readings** (real clock only). Each time the block, or a helper of
  `examples/`, reads the loop's clock on the loop's thread, the watch notes
  the CPU, the lag and the time spent importing so far. A figure is a
  difference of two readings, so what the machine and the block's own code
  added to it is what accrued between them.

A real-clock figure may exceed its recorded value by the lag and the
block's own CPU between its two readings: load delays it, the block does not.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import contextlib
import dataclasses
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import blockbuster.blockbuster as blockbuster_module
import trio
from blockbuster import BlockBuster, BlockingError

import examples

# A step that uses more CPU than this holds the loop. The steps of the
# site's blocks use well under 5 ms; a parse, a hash or a busy loop shows.
STEP_CPU_LIMIT_MS = 25
# How often the profiling timer samples a long step, in seconds of CPU.
SAMPLE_EVERY_SECONDS = 0.004
# A timer that fires this late is on time: the loop rounds its wait to the
# millisecond, and that is not the machine's doing.
TIMER_GRACE_MS = 2
# The probe timer's period on the real clock.
PROBE_EVERY_SECONDS = 0.005
# Where the clock readings that make the block's figures come from: the
# block itself and the helpers it imports, never the loop's own machinery.
EXAMPLES_DIR = os.path.dirname(examples.__file__) + os.sep
_LIBRARY_DIRS = (
    str(Path(asyncio.__file__).parent) + os.sep,
    str(Path(anyio.__file__).parent) + os.sep,
)


@dataclass(frozen=True)
class ClockReading:
    """One reading of the loop's clock by the block, and what had accrued by then."""

    at: float  # the loop's time
    cpu: float  # the loop thread's CPU since the block started, less imports and the watch's
    lag: float  # the watch's lag so far
    waited: float  # the kernel's count of this thread's wait for a core so far, less imports'
    imported: float  # wall time spent importing so far
    step: int = -1  # the real-clock step it was taken in (-1: outside any)
    # The lag once that step had ended: a step kept off the core is counted
    # when it ends, after the readings taken in it.
    lag_after: float = 0.0


class Located:
    """Finds the Markdown line of the block's innermost frame in a stack."""

    def __init__(self, block_file: str, markdown_line: Callable[[int], str]) -> None:
        self.block_file = block_file
        self.markdown_line = markdown_line  # line in the block file -> "docs/x.md:N"

    def frame(self, frame: FrameType | None, outside_imports: bool = False) -> str | None:
        """The block line the stack is at; None if none is (or, when asked, while importing)."""
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename == self.block_file:
                return self.markdown_line(frame.f_lineno)
            if outside_imports and filename.startswith("<frozen importlib"):
                return None
            frame = frame.f_back
        return None

    def summary(self, frames: Any) -> str | None:
        """The innermost block line of a list of FrameSummary (a traceback)."""
        found = None
        for entry in frames or ():
            if entry.filename == self.block_file and entry.lineno is not None:
                found = self.markdown_line(entry.lineno)
        return found


class LoopWatch:
    """What the loop's thread did while one block ran."""

    def __init__(self, located: Located, real_clock: bool) -> None:
        self.located = located
        self.real_clock = real_clock
        self.thread = threading.get_ident()
        self.problems: list[str] = []
        self.steps = 0
        self.lag_seconds = 0.0
        self.cpu_seconds = 0.0  # the loop thread's CPU while the block ran, less imports and ours
        self.readings: list[ClockReading] = []  # the block's readings of the loop's clock
        self._cpu_start = 0.0
        self._waited_start = 0.0
        self._schedstat: int | None = None  # the loop thread's schedstat file, open
        self._step_end_lags: list[float] = []  # the lag as each real-clock step ended
        self._in_step = False  # a real-clock step of the block is running
        self._excluded_cpu = 0.0  # CPU spent importing, and on the watch's work around steps
        # CPU spent noting clock readings: not the block's, but inside its
        # step, so a step that reads the clock in a busy loop stays busy.
        self._reading_cpu = 0.0
        self._import_waited = 0.0  # the kernel's count of waits for a core while importing
        self.import_seconds = 0.0  # wall time spent importing modules on the loop's thread
        self._import_depth = 0
        self._step_started: float | None = None
        self._step_excluded_cpu = 0.0
        self._samples: Counter[str] = Counter()
        self._horizon = 0.0
        # (loop time, thread CPU) at the start and end of every step
        self._cpu_marks: list[tuple[float, float]] = []
        self._probe: Callable[[], None] | None = None

    @property
    def lag_ms(self) -> int:
        return round(self.lag_seconds * 1000)

    @property
    def cpu_ms(self) -> int:
        return round(self.cpu_seconds * 1000)

    # --- Steps ---------------------------------------------------------------

    def begin_step(self) -> None:
        self._samples.clear()
        self._step_excluded_cpu = self._excluded_cpu
        self._step_started = time.thread_time()
        signal.setitimer(signal.ITIMER_PROF, SAMPLE_EVERY_SECONDS, SAMPLE_EVERY_SECONDS)

    def end_step(self) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0)
        if self._step_started is None:
            return
        used = time.thread_time() - self._step_started
        used -= self._excluded_cpu - self._step_excluded_cpu
        self._step_started = None
        self.steps += 1
        used_ms = used * 1000
        if used_ms > STEP_CPU_LIMIT_MS:
            where = self._samples.most_common(1)[0][0] if self._samples else None
            self.problems.append(
                f"{where or 'code outside the block'}: one step held the event loop for "
                f"{used_ms:.0f} ms of CPU (the limit is {STEP_CPU_LIMIT_MS} ms); nothing "
                "else ran meanwhile. Move the work to a thread "
                "(`await anyio.to_thread.run_sync(...)` or `await asyncio.to_thread(...)`), "
                "or make it smaller."
            )

    def _sample(self, signum: int, frame: FrameType | None) -> None:
        if self._step_started is None:
            return
        where = self.located.frame(frame, outside_imports=True)
        if where is not None:
            self._samples[where] += 1

    # --- Imports ---------------------------------------------------------------

    def _timed_import(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.thread or self._import_depth:
                self._import_depth += threading.get_ident() == self.thread
                try:
                    return original(*args, **kwargs)
                finally:
                    self._import_depth -= threading.get_ident() == self.thread
            self._import_depth = 1
            started, wall, waited = time.thread_time(), time.perf_counter(), self._run_delay()
            try:
                return original(*args, **kwargs)
            finally:
                self._import_depth = 0
                self._excluded_cpu += time.thread_time() - started
                self.import_seconds += time.perf_counter() - wall
                self._import_waited += self._run_delay() - waited

        return timed

    # --- Timers and lag (real clock) -----------------------------------------------

    def timer_fired(self, due: float, now: float, grace: float = 0.0) -> None:
        """Count the time a timer was overdue, less the thread's own CPU in it."""
        start = max(due + grace, self._horizon)
        if now <= start:
            return
        self.lag_seconds += max(0.0, (now - start) - self._cpu_since(start))
        self._horizon = now

    def step_ran(self, start: float, end: float, cpu: float, before: _Switches) -> None:
        """Count the part of a step the thread was kept off the core by others.

        Wall time beyond the step's CPU time is the machine's when the thread
        was preempted meanwhile (an involuntary context switch), or when
        another thread of this process ran meanwhile (the thread waited for
        the interpreter lock, which a preempted thread may hold for long). A
        step that waited with neither, on a quiet machine, waited for
        something of its own: that is not excused.
        """
        after = _Switches.now()
        if after.involuntary == before.involuntary and after.others_cpu <= before.others_cpu:
            return
        taken = max(0.0, (end - start) - cpu)
        if taken > 0:
            self.lag_seconds += taken
            self._horizon = max(self._horizon, end)

    def _cpu_since(self, moment: float) -> float:
        index = bisect.bisect_right(self._cpu_marks, (moment, float("inf"))) - 1
        if index < 0:
            return 0.0
        return time.thread_time() - self._cpu_marks[index][1]

    def mark(self, now: float) -> None:
        self._cpu_marks.append((now, time.thread_time()))

    # --- Hooks into the loops -----------------------------------------------------

    def asyncio_step(self, original: Callable[[asyncio.Handle], None]) -> Callable[..., None]:
        watch = self

        def _run(handle: asyncio.Handle) -> None:
            if threading.get_ident() != watch.thread or watch._step_started is not None:
                original(handle)
                return
            entered = time.thread_time()
            loop = getattr(handle, "_loop", None)
            real = watch.real_clock and loop is not None
            probe = real and getattr(handle, "_callback", None) is watch._probe
            if real:
                now = loop.time()
                if isinstance(handle, asyncio.TimerHandle):
                    # The block's own timers count from the moment they were
                    # due; the probe only past its grace, or its wake-ups,
                    # each rounded up to the millisecond, would add up.
                    grace = TIMER_GRACE_MS / 1000 if probe else 0.0
                    watch.timer_fired(handle.when(), now, grace)
                watch.mark(now)
                cpu, switches = time.thread_time(), _Switches.now()
            # The watch's own work around the step, and the probe, are not the block's.
            started = time.thread_time()
            watch._excluded_cpu += started - entered
            watch.begin_step()
            watch._in_step = real
            try:
                original(handle)
            finally:
                watch._in_step = False
                watch.end_step()
                ended = time.thread_time()
                if probe:
                    watch._excluded_cpu += ended - started
                if real:
                    end = loop.time()
                    watch.step_ran(now, end, time.thread_time() - cpu, switches)
                    watch.mark(end)
                    watch._step_end_lags.append(watch.lag_seconds)
                watch._excluded_cpu += time.thread_time() - ended

        return _run

    def trio_instrument(self) -> trio.abc.Instrument:
        watch = self

        class Steps(trio.abc.Instrument):
            def before_task_step(self, task: trio.lowlevel.Task) -> None:
                watch.begin_step()

            def after_task_step(self, task: trio.lowlevel.Task) -> None:
                watch.end_step()

        return Steps()

    def watch_clock(self, loop: asyncio.AbstractEventLoop) -> None:
        """Note what had accrued each time the block reads this loop's clock."""
        loop_time = loop.time

        def time_read() -> float:
            now = loop_time()
            if threading.get_ident() == self.thread and self._read_by_block(sys._getframe(1)):
                entered = time.thread_time()
                cpu = entered - self._cpu_start - self._excluded_cpu - self._reading_cpu
                waited = self._run_delay() - self._waited_start - self._import_waited
                step = len(self._step_end_lags) if self._in_step else -1
                reading = ClockReading(
                    now, cpu, self.lag_seconds, waited, self.import_seconds, step
                )
                self.readings.append(reading)
                self._reading_cpu += time.thread_time() - entered
            return now

        loop.time = time_read  # type: ignore[method-assign]

    def _read_by_block(self, frame: FrameType | None) -> bool:
        # `anyio.current_time()` reaches the loop through two functions of
        # that name; any other caller inside anyio or asyncio is machinery.
        while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
            if frame.f_code.co_name != "current_time":
                return False
            frame = frame.f_back
        if frame is None:
            return False
        filename = frame.f_code.co_filename
        return filename == self.located.block_file or filename.startswith(EXAMPLES_DIR)

    def settled(self, reading: ClockReading) -> ClockReading:
        """The reading with the lag its step had once it ended (its own, outside steps)."""
        step = reading.step
        ended = self._step_end_lags[step] if 0 <= step < len(self._step_end_lags) else reading.lag
        return dataclasses.replace(reading, lag_after=ended)

    def _run_delay(self) -> float:
        """The kernel's count of the loop thread's waits for a core, in seconds; 0 if none."""
        if self._schedstat is None:
            return 0.0
        with harness_code():
            try:
                return _run_delay_of(os.pread(self._schedstat, 128, 0))
            except OSError:
                return 0.0

    def start_probe(self, loop: asyncio.AbstractEventLoop) -> None:
        """A timer every few ms, so the lag is measured while the block waits on I/O."""

        def probe() -> None:
            if not loop.is_closed():
                loop.call_later(PROBE_EVERY_SECONDS, probe)

        self._probe = probe
        loop.call_later(PROBE_EVERY_SECONDS, probe)

    # --- Blocking calls -----------------------------------------------------------

    def blocking_call(self, function: str) -> None:
        where = self.located.frame(sys._getframe(2))
        self.problems.append(
            f"{where or 'code outside the block'}: a blocking call to {function} on the "
            "event loop's thread; nothing else runs until it returns. Use the async form "
            "(`await anyio.sleep()`, an async client, `await anyio.to_thread.run_sync(...)`)."
        )


SCHEDSTAT = "/proc/thread-self/schedstat"


def _run_delay_of(schedstat: bytes) -> float:
    """The second field of a thread's schedstat: its time ready to run but not running.

    In nanoseconds; the kernel counts it wherever the wait falls. 0 where
    the kernel does not report it.
    """
    try:
        return int(schedstat.split()[1]) / 1_000_000_000
    except (IndexError, ValueError):
        return 0.0


def cpu_stall_seconds() -> float:
    """How long, in all, some task on this machine has waited for a core (Linux PSI).

    A real-stack block's work runs in other processes (PostgreSQL, a server
    thread's loop): the loop's own timers cannot see them kept waiting, the
    kernel's pressure counter can. 0 where the kernel does not report it.
    """
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0.0
    total = dict(field.split("=") for field in first.split()[1:]).get("total", "0")
    return int(total) / 1_000_000


@contextlib.contextmanager
def harness_code() -> Iterator[None]:
    """Run the harness's own code on the loop's thread without blockbuster's checks."""
    skipped = blockbuster_module._skip.value
    blockbuster_module._skip.value = True
    try:
        yield
    finally:
        blockbuster_module._skip.value = skipped


def _exempt(method: Callable[..., Any]) -> Callable[..., Any]:
    def exempt(*args: Any, **kwargs: Any) -> Any:
        with harness_code():
            return method(*args, **kwargs)

    return exempt


@dataclass(frozen=True)
class _Switches:
    """This thread's involuntary context switches, and the other threads' CPU time."""

    involuntary: int
    others_cpu: float

    @classmethod
    def now(cls) -> _Switches:
        usage = resource.getrusage(resource.RUSAGE_THREAD)
        return cls(usage.ru_nivcsw, time.process_time() - time.thread_time())


class _LoopProbe:
    """Stands in for the `asyncio` module inside blockbuster.

    blockbuster watches every thread that runs an asyncio loop; this watches
    the block's own loop thread only (a server the block starts in another
    thread has its own rules), and Trio's too.
    """

    def __init__(self, thread: int) -> None:
        self.thread = thread

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    def get_running_loop(self) -> Any:
        if threading.get_ident() == self.thread:
            loop = asyncio._get_running_loop()
            if loop is not None:
                return loop
            if trio.lowlevel.in_trio_run():
                return True
        raise RuntimeError("not the block's event loop")


def _blockbuster() -> BlockBuster:
    """blockbuster's list, less what the harness and the frameworks do on purpose."""
    buster = BlockBuster()
    for function in buster.functions.values():
        # FastAPI reads an endpoint's source file once, on its first request,
        # to name the endpoint in error messages (`_extract_endpoint_context`
        # in fastapi/routing.py). That is the framework's, not the block's.
        function.can_block_in("fastapi/routing.py", "_extract_endpoint_context")
        # asyncpg looks for a password file (~/.pgpass) and TLS files each
        # time it opens a connection (`_parse_connect_dsn_and_args` in
        # asyncpg/connect_utils.py): the driver's, once per connection.
        function.can_block_in("asyncpg/connect_utils.py", "_parse_connect_dsn_and_args")
    for name in ("io.TextIOWrapper.write", "io.BufferedWriter.write"):
        # pytest logs every record to a file handler on os.devnull.
        function = buster.functions[name]
        allowed = function.can_block_predicate

        def to_devnull(
            file: Any, *args: Any, _allowed: Callable[..., bool] = allowed, **kwargs: Any
        ) -> bool:
            return getattr(file, "name", None) == os.devnull or _allowed(file, *args, **kwargs)

        function.can_block_predicate = to_devnull
    return buster


@contextlib.contextmanager
def watching(watch: LoopWatch) -> Iterator[None]:
    """Install every hook for one run; remove them all afterwards."""

    class Blocking(BlockingError):
        def __init__(self, func: str) -> None:
            super().__init__(func)
            watch.blocking_call(func)

    original_run = asyncio.events.Handle._run
    original_import = builtins.__import__
    original_handle = logging.Handler.handle
    previous_handler = signal.signal(signal.SIGPROF, watch._sample)
    buster = _blockbuster()
    saved = blockbuster_module.asyncio, blockbuster_module.BlockingError
    blockbuster_module.asyncio = _LoopProbe(watch.thread)  # type: ignore[assignment]
    blockbuster_module.BlockingError = Blocking  # type: ignore[misc]
    asyncio.events.Handle._run = watch.asyncio_step(original_run)  # type: ignore[method-assign]
    builtins.__import__ = watch._timed_import(original_import)
    # Log handlers are the application's set-up, not its request path; and
    # pytest's handlers format tracebacks, which reads source files.
    logging.Handler.handle = _exempt(original_handle)  # type: ignore[method-assign]
    try:
        with contextlib.suppress(OSError):
            # Opened on the loop's thread, the file stays that thread's.
            watch._schedstat = os.open(SCHEDSTAT, os.O_RDONLY)
        watch._cpu_start, watch._waited_start = time.thread_time(), watch._run_delay()
        buster.activate()
        yield
    finally:
        buster.deactivate()
        if watch.real_clock:
            cpu = time.thread_time() - watch._cpu_start - watch._excluded_cpu - watch._reading_cpu
            watch.cpu_seconds = max(0.0, cpu)
            waited = watch._run_delay() - watch._waited_start - watch._import_waited
            watch.lag_seconds = max(watch.lag_seconds, waited)
            watch.readings = [watch.settled(reading) for reading in watch.readings]
        if watch._schedstat is not None:
            os.close(watch._schedstat)
            watch._schedstat = None
        logging.Handler.handle = original_handle  # type: ignore[method-assign]
        builtins.__import__ = original_import
        asyncio.events.Handle._run = original_run  # type: ignore[method-assign]
        blockbuster_module.asyncio, blockbuster_module.BlockingError = saved
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous_handler)
