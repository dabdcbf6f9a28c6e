"""Run a documentation code block the way the site promises it runs.

One block is run in one of four clocks:

- ``asyncio``: asyncio on a looptime loop (virtual time, exact output);
- ``ties``: the same, except that two timers are never due at the same
  moment: a timer set for a moment another timer is already set for is due
  a few nanoseconds after it (exact output). Timers that tie are a race on
  a real loop: usually they fire in one step, as on ``asyncio``; when the
  second is set late, they fire a step apart, in the order they were set,
  as here. A block must print the same either way;
- ``trio``: Trio with ``MockClock(autojump_threshold=0)`` through AnyIO
  (virtual time, exact output), for blocks that start with ``anyio.run``;
- ``real``: asyncio on the real clock; every ``N ms`` it prints must land
  within a tolerance of the recorded figure, so a blocking call that a virtual
  clock would hide shows up as a difference.

A block is a complete program ending in ``asyncio.run(main())`` or
``anyio.run(main)``; the harness swaps in the loop for the clock. After the
run it fails the block if a task was left pending, a coroutine was never
awaited, a task's exception was never retrieved, or ``time.sleep`` ran on
the event loop. Errors name the Markdown file and line.
"""

from __future__ import annotations

import ast
import asyncio
import bisect
import contextlib
import difflib
import functools
import gc
import importlib.util
import logging
import math
import os
import re
import subprocess
import sys
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeGuard

import anyio
import anyio._backends._asyncio
import anyio._backends._trio
import looptime
import pytest
import trio.testing
from blockbuster import BlockingError
from pytest_examples import CodeExample
from pytest_examples import run_code as pe_run_code
from pytest_examples.config import ExamplesConfig

from examples import services, timeline
from tests import loopwatch

# AnyIO imports a backend the first time it is used; the two imports above do
# it now, so that importing is never counted as a block's own work on its loop.

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

CLOCKS = ("asyncio", "ties", "trio", "real")
# The clocks a fault run (tests/faultmatrix.py) or a critical-path check uses:
# one virtual run per event loop is enough to see what a failing call does.
FAULT_CLOCKS = ("asyncio", "trio")
# On the ties clock, a timer set for the same moment (to the microsecond) as
# timers set before it is due this much later than the last of them: ten
# times the loop's clock resolution, so that the two never fall in one loop
# step, and so small that a thousand timers tied together move no figure by
# a millisecond.
TIE_STEP_S = 1e-8
# A real-clock figure may be up to REAL_EARLY_MS early (timers and the
# loop's clock round to the millisecond) and late by REAL_LATE_MS (the real
# loop's own overhead on a quiet machine) plus whatever the machine delayed
# the run by, which tests/loopwatch.py measures as the run's lag. More than
# that is a wait the virtual clock skipped.
REAL_EARLY_MS = 2
REAL_LATE_MS = 10
# A real-clock run the machine delayed by more than REAL_LATE_MS, and whose
# output did not match, is run again, this many runs in all.
REAL_ATTEMPTS = 5
# A stack="real" block's output is recorded from a real run, whose queries,
# connections and scheduling cost what they cost on that machine that day
# (loaded runs here measured up to 1.6 times a quiet run's figures): a
# quieter run may print down to (recorded - REAL_STACK_EARLY_MS) / 2.
REAL_STACK_EARLY_MS = 30
REAL_STACK_FASTER_FACTOR = 2.0

# What fits a code line of the content column at 1280 px (the browser tests
# measure it: 80 characters).
LINE_LENGTH = 80
RUFF_RULES = "E,F,W,I,B,UP,ASYNC,RUF006"
# Line length is the formatter's job; recorded output (a timeline with a long
# label) may be wider than code and cannot be wrapped.
RUFF_IGNORE = "E501"

_ANYIO_RUN = anyio.run  # the real one; blocks get a clock-aware stand-in
# Printed output keeps the width it had: a recorded dict or message on one
# line reads (and is matched by the page tests) as the program printed it;
# where it is longer than the column, the site wraps it.
OUTPUT_LINE_LENGTH = 88
EXAMPLES_CONFIG = ExamplesConfig(line_length=OUTPUT_LINE_LENGTH, quotes="either")


class ExampleError(AssertionError):
    """A block broke one of the site's rules; the message names file and line."""

    def __init__(self, message: str, raised: BaseException | None = None) -> None:
        super().__init__(message)
        self.raised = raised  # the exception the block itself raised, if that was the problem
        self.observed: Observed | None = None  # what the run did, set by run_block
        # How much the machine delayed a real-clock run whose figures did not match.
        self.machine_lag_ms: int | None = None


def location(example: CodeExample, offset: int = 0) -> str:
    """`docs/page.md:LINE` for a line of the block (0 = its first code line)."""
    return f"{relative(example.path)}:{example.start_line + 1 + offset}"


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --- Fence settings -----------------------------------------------------------


# The Python the suite runs on, as "3.12": a block's `python=` is checked against it.
RUNNING_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
OLDEST_PYTHON = (3, 11)  # pyproject.toml's requires-python
_PYTHON_RANGE = re.compile(r"^(?P<low>3\.\d+)(?:(?P<plus>\+)|-(?P<high>3\.\d+))?$")


@dataclass(frozen=True)
class PythonRange:
    """The Python versions a block is for: `python="3.12+"`, `"3.11-3.12"` or `"3.13"`."""

    text: str  # as the fence says it, for messages
    low: tuple[int, int]
    high: tuple[int, int] | None  # None: no upper bound ("3.12+")

    @classmethod
    def parse(cls, text: str, where: str) -> PythonRange:
        match = _PYTHON_RANGE.match(text)
        low = _version(match["low"]) if match else None
        high = _version(match["high"]) if match and match["high"] else low
        if match and match["plus"]:
            high = None
        if low is None or low < OLDEST_PYTHON or (high is not None and high < low):
            raise ExampleError(
                f'{where}: python="{text}" is not a Python range; write "3.12+" (that version '
                'or newer), "3.11-3.12" (inclusive) or "3.13" (one version), from 3.11 on'
            )
        return cls(text, low, high)

    def allows(self, version: str) -> bool:
        wanted = _version(version)
        return self.low <= wanted and (self.high is None or wanted <= self.high)

    def __str__(self) -> str:
        return self.text


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


@dataclass(frozen=True)
class Settings:
    """What a fence's attributes ask of the harness."""

    skip: str | None  # test="skip: reason"
    backend: str | None  # backend="asyncio" restricts to asyncio clocks
    expect_warning: str | None  # expect_warning="never awaited"
    fence_line: str  # docs/page.md:LINE of the opening fence, for messages about it
    stack: str | None = None  # stack="real": talks to real servers; real clock only
    python: PythonRange | None = None  # python="3.12+" runs the block only there

    @classmethod
    def of(cls, example: CodeExample) -> Settings:
        attrs = example.prefix_settings()
        known = {
            "test",
            "backend",
            "expect_warning",
            "stack",
            "python",
            "title",
            "hl_lines",
            "linenums",
        }
        unknown = set(attrs) - known
        if unknown:
            raise ExampleError(
                f"{location(example, -1)}: unknown fence attribute(s) {sorted(unknown)}; "
                f"known: {sorted(known)}"
            )
        test = attrs.get("test")
        if test is not None and not test.startswith("skip"):
            raise ExampleError(f'{location(example, -1)}: test="{test}" must be "skip: <why>"')
        backend = attrs.get("backend")
        if backend not in (None, "asyncio"):
            raise ExampleError(f'{location(example, -1)}: backend="{backend}" must be "asyncio"')
        stack = attrs.get("stack")
        if stack not in (None, "real"):
            raise ExampleError(f'{location(example, -1)}: stack="{stack}" must be "real"')
        python = attrs.get("python")
        return cls(
            skip=test,
            backend=backend,
            expect_warning=attrs.get("expect_warning"),
            fence_line=location(example, -1),
            stack=stack,
            python=PythonRange.parse(python, location(example, -1)) if python else None,
        )


def uses_anyio_run(example: CodeExample) -> bool:
    return "anyio.run(" in example.source


def includes_only(example: CodeExample) -> bool:
    """A block that only includes a file (`--8<-- "examples/x.py"`) to show it in full.

    The file is not a program: it is linted with the project and tested by
    its own unit tests, so the block is neither run nor linted here.
    """
    lines = [line for line in example.source.splitlines() if line.strip()]
    return bool(lines) and all(line.startswith("--8<--") for line in lines)


def clocks_for(example: CodeExample, python: str | None = RUNNING_PYTHON) -> list[str]:
    """The clocks a block runs on: Trio only for AnyIO programs.

    None on a Python its `python=` excludes; `python=None` gives the clocks
    whatever the Python (tests/test_docs.py lists those and skips with a reason).
    """
    settings = Settings.of(example)
    if includes_only(example):
        return []
    if python is not None and settings.python and not settings.python.allows(python):
        return []
    if settings.stack == "real":
        # Real servers answer in real time: no virtual clock can run these.
        return ["real"]
    if settings.backend == "asyncio" or not uses_anyio_run(example):
        return ["asyncio", "ties", "real"]
    return list(CLOCKS)


# --- Fixing two misplacements in pytest-examples' recorded output -----------------


def _find_print_location(example: CodeExample, line_no: int) -> tuple[int, int]:
    """Where the output of the print on `line_no` goes: after its last line.

    pytest-examples only looks inside some statements and puts output of a
    print inside `except*`, `finally`, `else` or `match` at column 0; this
    looks at every call in the block.
    """
    tree = ast.parse(example.source)
    for node in ast.walk(tree):
        if _is_print_call(node) and node.lineno == line_no:
            return node.end_lineno or node.lineno, node.col_offset
    return line_no, 0


def _insert_print_statements(self: pe_run_code.InsertPrintStatements, example: CodeExample) -> str:
    """Write every print's output below it, for every time it ran.

    pytest-examples drops the output of a second run of a function with two
    prints; grouping by line keeps it all, in order.
    """
    assert self.print_func is not None
    lines = example.source.splitlines()
    by_line: dict[int, list[pe_run_code.PrintStatement]] = {}
    for statement in self.print_func.statements:
        by_line.setdefault(statement.line_no, []).append(statement)
    for line_no in sorted(by_line, reverse=True):
        at_line, col = pe_run_code.find_print_location(example, line_no)
        pe_run_code.remove_old_print(lines, at_line - 1)
        for statement in reversed(by_line[line_no]):
            self._insert_print_args(lines, statement, example.in_py_file(), at_line - 1, col)
    return "\n".join(lines) + "\n"


def _record_print(
    self: pe_run_code.MockPrintFunction, *args: Any, sep: str = " ", **_: Any
) -> None:
    """Record one print call of the block, as pytest-examples does, more cheaply.

    pytest-examples calls `inspect.stack()`, which reads source for every
    frame (about 19 ms a print in a deep stack), and compares files with
    `Path.samefile`, a `stat` on the loop's thread. The block runs from its
    own file, so its frames name that file exactly.
    """
    block_file = str(self.file)
    frame: FrameType | None = sys._getframe(pe_run_code.parent_frame_id)
    if frame is None or frame.f_code.co_filename != block_file:
        return
    line_no = frame.f_lineno
    arguments = [pe_run_code.Arg(arg) for arg in args]
    self.statements.append(pe_run_code.PrintStatement(line_no, sep, arguments))


pe_run_code.MockPrintFunction.__call__ = _record_print
pe_run_code.find_print_location = _find_print_location
pe_run_code.InsertPrintStatements._insert_print_statements = _insert_print_statements


# --- Running a block -----------------------------------------------------------------

# How many frames a coroutine remembers of where it was created, so a
# coroutine never awaited, or a task left pending, is reported at its line.
ORIGIN_DEPTH = 32


@dataclass
class Observed:
    """What went wrong while a block ran, besides its output.

    Each problem starts with the Markdown line it is about.
    """

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # every warning, as emitted
    leaks: list[str] = field(default_factory=list)  # leak warnings, at their lines
    calls_made: int = 0  # simulated calls the run made (services.faults.calls_made)
    lag_ms: int = 0  # how much the machine delayed the run (real clock)
    cpu_ms: int = 0  # the loop thread's CPU while the block ran, less imports and the watch's
    readings: list[loopwatch.ClockReading] = field(default_factory=list)  # (real clock)
    import_ms: int = 0  # time the loop's thread spent importing modules
    blocked: bool = False  # a blocking call was made on the loop's thread


class _LogCapture(logging.Handler):
    def __init__(self, observed: Observed, where: Callable[[str], str]) -> None:
        super().__init__(logging.WARNING)
        self.observed = observed
        self.where = where

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "never retrieved" in message:
            self.observed.problems.append(f"{self.where(message)}: {message.splitlines()[0]}")


def _loop_exception_handler(
    observed: Observed, where: Callable[[str], str]
) -> Callable[[Any, dict[str, Any]], None]:
    def handle(loop: Any, context: dict[str, Any]) -> None:
        with loopwatch.harness_code():
            _report(context)

    def _report(context: dict[str, Any]) -> None:
        message = context.get("message", "")
        exc = context.get("exception")
        detail = f": {type(exc).__name__}: {exc}" if exc else ""
        origin = ""
        task = context.get("task") or context.get("future")
        if isinstance(task, asyncio.Task):
            origin = where(_origin_text(task.get_coro()))
        elif exc is not None:
            origin = where(_traceback_text(exc))
        observed.problems.append(f"{origin or where('')}: {message}{detail}")

    return handle


def _traceback_text(exc: BaseException) -> str:
    """Where an exception was raised, as traceback text, without reading any source."""
    frames = traceback.walk_tb(exc.__traceback__)
    return "".join(f'  File "{f.f_code.co_filename}", line {n}\n' for f, n in frames)


def _origin_text(coro: Any) -> str:
    """Where a coroutine was created, as traceback text (innermost last)."""
    origin = getattr(coro, "cr_origin", None) or ()
    return "".join(
        f'  File "{file}", line {line}, in {name}\n' for file, line, name in origin[::-1]
    )


async def _leak_checked(main: Any, observed: Observed, where: Callable[[str], str]) -> Any:
    """Run `main`, then report tasks it left running (asyncio)."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_exception_handler(observed, where))
    ended = "raised"
    try:
        result = await main
        ended = "returned"
        return result
    finally:
        # Also when main() raised: the runner would cancel these silently.
        with loopwatch.harness_code():
            _report_pending(observed, where, ended)


def _report_pending(observed: Observed, where: Callable[[str], str], ended: str) -> None:
    me = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not me and not task.done()]
    for task in pending:
        coro = task.get_coro()
        name = getattr(coro, "__qualname__", repr(coro))
        observed.problems.append(
            f"{where(_origin_text(coro))}: task left pending when main() {ended}: {name} "
            "was still running, and the run would cancel it silently. Await it, or start "
            "it in a task group that waits for it."
        )


def _patched_runners(
    clock: str, observed: Observed, watch: loopwatch.LoopWatch, where: Callable[[str], str]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    real = clock == "real"

    def loop_factory() -> asyncio.AbstractEventLoop:
        if real:
            loop = asyncio.new_event_loop()
            watch.start_probe(loop)
            watch.watch_clock(loop)
            return loop
        if clock == "ties":
            return untied_loop()
        return looptime.new_event_loop()

    def asyncio_run(main: Any, *, debug: bool | None = None) -> Any:
        if clock == "trio":
            main.close()
            raise ExampleError("asyncio.run() cannot run on Trio")
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(_leak_checked(main, observed, where))

    def anyio_run(
        func: Callable[..., Any], *args: Any, backend: str = "asyncio", backend_options: Any = None
    ) -> Any:
        if clock == "trio":
            options = {
                "clock": trio.testing.MockClock(autojump_threshold=0),
                "instruments": [watch.trio_instrument()],
            }
            return _ANYIO_RUN(func, *args, backend="trio", backend_options=options)

        async def checked() -> Any:
            return await _leak_checked(func(*args), observed, where)

        return _ANYIO_RUN(
            checked, backend="asyncio", backend_options={"loop_factory": loop_factory}
        )

    return asyncio_run, anyio_run


def untied_loop() -> asyncio.AbstractEventLoop:
    """A looptime loop on which no two timers are ever due at the same moment.

    A virtual clock stands still while code runs, so two calls started one
    after the other with the same latency are due at the same moment, and
    fire in one step, in the heap's order. On a real loop that is the usual
    outcome of a race, not the only one: when the second call is set late
    enough, or something wakes the loop between the two, they fire a step
    apart, the one set first first. Here every timer set for a moment that
    timers were already set for is due `TIE_STEP_S` after the last of them,
    so each tie takes that other outcome. Untied timers are not moved.
    """
    loop = looptime.new_event_loop(resolution=1e-9)
    nominal_call_at = loop.call_at
    set_for: Counter[int] = Counter()  # timers set so far, per microsecond

    def call_at(
        when: float, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        if math.isfinite(when):  # not a sleep_forever()
            moment = round(when * 1_000_000)
            when += set_for[moment] * TIE_STEP_S
            set_for[moment] += 1
        return nominal_call_at(when, callback, *args, context=context)

    loop.call_at = call_at  # type: ignore[method-assign,assignment]
    return loop


class _Lines:
    """Rewrites the run's file paths as Markdown lines; finds a message's line."""

    def __init__(self, example: CodeExample, python_file: Path) -> None:
        self.example = example
        self.python_file = str(python_file)
        self._frame = re.compile(rf'File "{re.escape(self.python_file)}", line (\d+)')
        # Worked out now: resolving a path while the block runs would be a
        # blocking call on its loop.
        self._page = relative(example.path)

    def markdown(self, line_in_block: int) -> str:
        return f"{self._page}:{self.example.start_line + line_in_block}"

    def rewrite(self, text: str) -> str:
        return self._frame.sub(lambda m: f'File "{self.markdown(int(m[1]))}"', text)

    def where(self, text: str) -> str:
        """The innermost block line a traceback text names, else the block's first line."""
        lines = [int(m[1]) for m in self._frame.finditer(text)]
        return self.markdown(lines[-1] if lines else 1)


@contextlib.contextmanager
def _watch(
    clock: str,
    observed: Observed,
    prepare: Callable[[], None] | None,
    lines: _Lines,
) -> Iterator[None]:
    """Swap in the clock's runners and watch for leaks while a block runs.

    `prepare` runs after the simulated backend is reset, just before the
    block: a test can use it to inject a fault (see `services.faults`).
    """
    watch = loopwatch.LoopWatch(
        loopwatch.Located(lines.python_file, lines.markdown), real_clock=clock == "real"
    )
    asyncio_run, anyio_run = _patched_runners(clock, observed, watch, lines.where)
    handler = _LogCapture(observed, lines.where)
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(handler)
    services.faults.reset()
    timeline.opened.clear()
    if prepare is not None:
        prepare()
    # Everything that exists before the block is not the block's garbage:
    # freezing it makes the collection below walk only the block's objects
    # (a few ms, instead of tens of ms in a process full of pytest and
    # FastAPI), while still finding every cycle the block left behind.
    # No automatic collection runs during the block, so none lands in a step.
    gc.freeze()
    gc.disable()
    origin_depth = sys.get_coroutine_origin_tracking_depth()
    sys.set_coroutine_origin_tracking_depth(ORIGIN_DEPTH)
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            pytest.MonkeyPatch.context() as patch,
        ):
            warnings.simplefilter("always")
            patch.setattr(asyncio, "run", asyncio_run)
            patch.setattr(anyio, "run", anyio_run)
            try:
                with loopwatch.watching(watch):
                    yield
            finally:
                gc.collect()
                for warning in caught:
                    raw = f"{warning.category.__name__}: {warning.message}"
                    text = lines.rewrite(raw)
                    observed.warnings.append(text)
                    # Every warning is a problem: a reader who runs the block
                    # would see it. A coroutine's ends with where it was created.
                    first = text.splitlines()[0]
                    if warning.filename == lines.python_file and "never awaited" not in raw:
                        where = lines.markdown(warning.lineno)
                    else:
                        where = lines.where(raw)
                    observed.leaks.append(f"{where}: {first}")
    finally:
        sys.set_coroutine_origin_tracking_depth(origin_depth)
        gc.enable()
        gc.unfreeze()
        asyncio_logger.removeHandler(handler)
        observed.calls_made = services.faults.calls_made
        observed.problems.extend(watch.problems)
        observed.blocked = any("a blocking call" in problem for problem in watch.problems)
        observed.lag_ms = watch.lag_ms
        observed.cpu_ms = watch.cpu_ms
        observed.readings = watch.readings
        observed.import_ms = round(watch.import_seconds * 1000)
        services.faults.reset()


def run_block(
    example: CodeExample,
    clock: str,
    tmp_path: Path,
    prepare: Callable[[], None] | None = None,
) -> tuple[pe_run_code.InsertPrintStatements, Observed]:
    """Run one block on one clock; return its print recorder and what was observed.

    The timelines the block opened stay in `examples.timeline.opened` until
    the next run. A failure is one ExampleError whose message lists each
    problem once, at its own Markdown line.
    """
    settings = Settings.of(example)
    observed = Observed()
    python_file = tmp_path / f"{example.module_name}.py"
    python_file.write_text(example.source)
    lines = _Lines(example, python_file)
    failure: ExampleError | None = None
    stalled = loopwatch.cpu_stall_seconds()
    try:
        with _watch(clock, observed, prepare, lines):
            insert_print = _run_module(example, python_file)
    except ExampleError as exc:
        failure = exc
    if settings.stack == "real":
        # Its servers run in other processes: what the machine made any of
        # them wait for a core counts as the machine's delay too.
        observed.lag_ms += round((loopwatch.cpu_stall_seconds() - stalled) * 1000)
    problems = _problems(settings, observed)
    if failure is not None:
        raised = failure.raised
        blocking = raised is not None and any(
            isinstance(error, BlockingError) for error in exception_tree(raised)
        )
        # A blocking call that the block did not catch is reported once, as
        # the blocking call, not again as the exception it became.
        message = "\n".join(problems) if blocking and problems else str(failure)
        if problems and not blocking:
            message += "\n\nAlso:\n" + "\n".join(problems)
        error = ExampleError(message, raised=raised)
        error.observed = observed
        raise error
    if problems:
        error = ExampleError("\n".join(problems))
        error.observed = observed
        raise error
    return insert_print, observed


def _run_module(example: CodeExample, python_file: Path) -> pe_run_code.InsertPrintStatements:
    """Execute the block as `__main__`, recording its prints.

    An exception is re-raised as an ExampleError whose traceback lines point
    into the Markdown file.
    """
    spec = importlib.util.spec_from_file_location("__main__", python_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    insert_print = pe_run_code.InsertPrintStatements(python_file, EXAMPLES_CONFIG, True, None, None)
    main_module = sys.modules["__main__"]
    sys.modules["__main__"] = module
    try:
        with insert_print:
            spec.loader.exec_module(module)
    except Exception as exc:
        message = _describe_failure(example, python_file, exc)
        # Free the locals of the failed frames now, so that whatever they held
        # (an unawaited coroutine, an open client) is reported for this block
        # and not during a later one.
        for raised in exception_tree(exc):
            traceback.clear_frames(raised.__traceback__)
        raise ExampleError(message, raised=exc) from None
    finally:
        # The block ran as __main__; give pytest its own module back.
        sys.modules["__main__"] = main_module
    return insert_print


def exception_tree(exc: BaseException) -> list[BaseException]:
    """The exception, what it groups, and what caused it, each once."""
    found: dict[int, BaseException] = {}
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in found:
            continue
        found[id(current)] = current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        stack.extend((current.__cause__, current.__context__))
    return list(found.values())


def _describe_failure(example: CodeExample, python_file: Path, exc: BaseException) -> str:
    """The traceback, with the block's own frames shown at their Markdown lines."""
    summary = traceback.TracebackException.from_exception(exc)
    # Keep the frames a reader can act on: not the harness's, not the runner's.
    summary.stack = traceback.StackSummary.from_list(
        [frame for frame in summary.stack if not _is_plumbing(frame.filename)]
    )
    text = "".join(summary.format())
    last_line = 0

    def to_markdown(match: re.Match[str]) -> str:
        nonlocal last_line
        last_line = int(match.group(1))
        return f'File "{location(example, last_line - 1)}"'

    text = re.sub(rf'File "{re.escape(str(python_file))}", line (\d+)', to_markdown, text)
    where = location(example, last_line - 1) if last_line else location(example)
    return f"{where}: the block raised {type(exc).__name__}: {exc}\n\n{text}"


def _is_plumbing(filename: str) -> bool:
    return (
        filename == __file__
        or filename.startswith("<frozen importlib")
        or filename.endswith(("asyncio/runners.py", "asyncio/base_events.py"))
    )


def _problems(settings: Settings, observed: Observed) -> list[str]:
    """Every broken rule of the run, each once, each at its Markdown line."""
    problems = list(observed.problems)
    leaks = list(observed.leaks)
    if settings.expect_warning:
        wanted = [w for w in observed.warnings if settings.expect_warning in w]
        if not wanted:
            problems.append(
                f'{settings.fence_line}: the fence says expect_warning="{settings.expect_warning}" '
                f"but no such warning was emitted (warnings: {observed.warnings or 'none'}). "
                "Show the trap so that it warns, or remove the attribute."
            )
        leaks = [w for w in leaks if settings.expect_warning not in w]
    return list(dict.fromkeys(problems + leaks))


def _is_leak_warning(text: str) -> bool:
    return any(
        marker in text
        for marker in (
            "never awaited",
            "never retrieved",
            "unclosed",
            "Unclosed",
            "ResourceWarning",
        )
    )


# --- Comparing output --------------------------------------------------------------


def check_block(example: CodeExample, clock: str, tmp_path: Path) -> None:
    """Run a block on one clock and compare its output with the recorded one.

    A real-clock run whose figures do not match is repeated only if the
    machine measurably disturbed it (a lag over REAL_LATE_MS): then events
    can come out late enough to change what the block printed (a deadline
    that fires first, calls that end in another order). A block at fault
    fails every run; a quiet run fails at once.
    """
    if clock != "real":
        _check_once(example, clock, tmp_path)
        return
    lags: list[int] = []
    while True:
        try:
            _check_once(example, clock, tmp_path)
            return
        except ExampleError as error:
            if error.machine_lag_ms is None or error.machine_lag_ms <= REAL_LATE_MS:
                raise
            lags.append(error.machine_lag_ms)
            if len(lags) == REAL_ATTEMPTS:
                raise ExampleError(
                    f"{error}\nThe machine delayed each of the {len(lags)} runs "
                    f"(by {', '.join(map(str, lags))} ms), so this may be its doing and not "
                    "the block's: run the block again on a quieter machine."
                ) from None


def _check_once(example: CodeExample, clock: str, tmp_path: Path) -> None:
    insert_print, observed = run_block(example, clock, tmp_path)
    new_source = updated_source(example, insert_print)
    if clock != "real":
        check_exact(example, new_source, clock)
        return
    try:
        check_within_tolerance(example, new_source, observed)
    except ExampleError as error:
        if error.machine_lag_ms is None:
            error.machine_lag_ms = observed.lag_ms + observed.import_ms
        raise


def updated_source(
    example: CodeExample, insert_print: pe_run_code.InsertPrintStatements
) -> str | None:
    """The block's source with this run's output in it, or None if unchanged."""
    return insert_print.updated_print_statements(example)


# Real runs a real-stack block's recording is chosen from.
REAL_STACK_RECORDING_RUNS = 3


def fastest_real_recording(example: CodeExample, tmp_path: Path) -> str | None:
    """The block's source with the output of its fastest of a few real runs.

    A real-stack block has no virtual run to record from, and one real run
    carries whatever delay the machine added to it. Of a few runs, the one
    whose figures add up lowest is the closest to what the code itself
    costs; later runs are judged against it. None if the output is unchanged.
    """
    best: tuple[int, str | None] | None = None
    for _ in range(REAL_STACK_RECORDING_RUNS):
        insert_print, _ = run_block(example, "real", tmp_path)
        source = updated_source(example, insert_print)
        total = sum(int(ms) for ms in _MS.findall(source or example.source))
        if best is None or total < best[0]:
            best = (total, source)
    assert best is not None
    return best[1]


def check_exact(example: CodeExample, new_source: str | None, clock: str) -> None:
    if new_source is None:
        return
    if clock == "ties":
        raise ExampleError(
            f"{location(example, _first_difference(example.source, new_source))}: "
            "printed output differs from the recorded output when timers due at the "
            "same moment fire a step apart, in the order they were set (ties clock); "
            "the asyncio clock fires them in one step. On a real loop either can "
            "happen: the block's output depends on which of two simultaneous events "
            "comes first. Change the block so that it prints the same whichever comes "
            "first, or so that the events do not tie.\n" + _diff(example, new_source)
        )
    raise ExampleError(
        f"{location(example, _first_difference(example.source, new_source))}: "
        f"printed output differs from the recorded output ({clock} clock). "
        f"Run `make update-examples` if the change is intended.\n" + _diff(example, new_source)
    )


# A figure in milliseconds: "took 150 ms", or a timeline's "50 →  150 ms".
_MS = re.compile(r"(\d+)(?= ms\b| +→ )")
_BARS = re.compile(f"[{timeline.BAR}{timeline.CANCELLED_BAR}]+")


def _shape(line: str) -> str:
    """A line with its millisecond figures and timeline bars taken out."""
    return " ".join(_BARS.sub(" ", _MS.sub("<ms>", line)).split())


@dataclass(frozen=True)
class Allowance:
    """What the machine and the block's own code added to one real-clock figure, in ms."""

    lag: int  # timers late, waits for a core, first imports
    cpu: int  # the block's own CPU
    paired: bool  # from the figure's own two readings, or (False) the whole run's


def figure_allowance(observed: Observed, real_ms: int, recorded_ms: int) -> Allowance:
    """What accrued between the two clock readings a figure is made of.

    A figure is the difference of two readings of the loop's clock: of the
    pairs of the block's readings that lie `real_ms` apart (to the ms), the
    one that explains the most. Everything counted only grows, so for each
    first reading that is the last in the window. A figure made of more than
    two readings (a mean, a sum) has no such pair: then the whole run's.
    The CPU counts up to the recorded figure plus REAL_LATE_MS (see
    check_within_tolerance).
    """
    cap = recorded_ms + REAL_LATE_MS
    readings = observed.readings
    times = [reading.at for reading in readings]
    best: tuple[float, float] | None = None
    for index, first in enumerate(readings):
        low = bisect.bisect_left(times, first.at + (real_ms - 1) / 1000, lo=index + 1)
        high = bisect.bisect_right(times, first.at + (real_ms + 1) / 1000, lo=index + 1)
        if high <= low:
            continue
        last = readings[high - 1]
        lag = max(max(last.lag_after, last.lag) - first.lag, last.waited - first.waited)
        lag_ms = (lag + last.imported - first.imported) * 1000
        # A reading taken while importing has that import's CPU in it.
        cpu_ms = max(0.0, last.cpu - first.cpu) * 1000
        if best is None or lag_ms + min(cpu_ms, cap) > best[0] + min(best[1], cap):
            best = (lag_ms, cpu_ms)
    if best is None:
        return Allowance(observed.lag_ms + observed.import_ms, observed.cpu_ms, paired=False)
    return Allowance(round(best[0]), round(best[1]), paired=True)


def check_within_tolerance(
    example: CodeExample, new_source: str | None, observed: Observed | None = None
) -> list[tuple[int, int]]:
    """Compare a real-clock run to the recorded output; return (recorded, real) pairs.

    Each figure may be late by what the machine did to it (the lag between
    the two clock readings it is made of, and first imports), plus the
    block's own CPU between them, which a virtual clock does not count, plus
    REAL_LATE_MS; it may be early by REAL_EARLY_MS. The CPU is counted up to
    the recorded figure plus REAL_LATE_MS: a block that computes for longer
    than the time it records is not waiting, and its figure hides its cost.
    A real-stack block's recording is a real run, its CPU already in it.
    """
    if new_source is None:
        return _pairs(example.source, example.source)
    pairs_of_lines = _align(example.source.splitlines(), new_source.splitlines())
    if pairs_of_lines is None:
        raise ExampleError(
            f"{location(example, _first_difference(example.source, new_source))}: "
            "on the real clock the block printed something other than the recorded output "
            "(beyond its millisecond figures).\n" + _diff(example, new_source)
        )
    observed = observed or Observed()
    pairs = []
    real_stack = Settings.of(example).stack == "real"
    for index, recorded_line, real_line in pairs_of_lines:
        for recorded, real in zip(_MS.findall(recorded_line), _MS.findall(real_line), strict=True):
            recorded, real = int(recorded), int(real)
            if real_stack:
                # Its servers' delay is counted machine-wide, for the whole run;
                # importing a module for the first time is the test process's.
                allowance = Allowance(observed.lag_ms + observed.import_ms, 0, paired=False)
            else:
                allowance = figure_allowance(observed, real, recorded)
            lag, cpu, cap = allowance.lag, allowance.cpu, recorded + REAL_LATE_MS
            low, high = recorded - REAL_EARLY_MS, recorded + REAL_LATE_MS + lag + min(cpu, cap)
            if real_stack:
                low = math.floor((recorded - REAL_STACK_EARLY_MS) / REAL_STACK_FASTER_FACTOR)
            figures = f"  recorded: {recorded_line.strip()}\n  real:     {real_line.strip()}"
            if real < low and real_stack:
                raise ExampleError(
                    f"{location(example, index)}: on the real clock this printed {real} ms "
                    f"where the recorded output says {recorded} ms, less than half of it: the "
                    "recording came from a much slower run, or the block no longer does what "
                    "it recorded. Run `make update-examples` to record it again.\n" + figures
                )
            if real < low:
                raise ExampleError(
                    f"{location(example, index)}: on the real clock this printed {real} ms "
                    f"where the recorded output says {recorded} ms: less time passed than the "
                    "virtual run waited. Does the block read a clock other than the event "
                    "loop's (time.time(), perf_counter())? Figures must come from "
                    "`anyio.current_time()` or `loop.time()`.\n" + figures
                )
            if real <= high:
                pairs.append((recorded, real))
                continue
            if real_stack:
                raise ExampleError(
                    f"{location(example, index)}: on the real clock this printed {real} ms "
                    f"where the recorded output says {recorded} ms. The machine delayed the run "
                    f"by {lag} ms (any process waiting for a core, machine-wide, for the whole "
                    "run, and first imports); that leaves "
                    f"{real - recorded - lag} ms that nothing explains (allowed: {REAL_LATE_MS} "
                    "ms). The block now waits longer than the run it was recorded from: a "
                    "slower query, one more round trip. If that is intended, run "
                    "`make update-examples` to record it again.\n" + figures
                )
            during = (
                f"between two readings of the loop's clock {real} ms apart"
                if allowance.paired
                else f"in the whole run (no two readings of the loop's clock are {real} ms apart)"
            )
            if real <= recorded + REAL_LATE_MS + lag + cpu:
                error = ExampleError(
                    f"{location(example, index)}: on the real clock this printed {real} ms "
                    f"where the recorded output says {recorded} ms, and the block's own code "
                    f"computed for {cpu} ms of CPU {during}: more than the recorded figure "
                    f"plus {REAL_LATE_MS} ms. A virtual clock does not count computing, so the "
                    "recorded figure hides what this costs. A loop that polls (`await "
                    "asyncio.sleep(0)` until something is done) computes while it waits: wait "
                    "for an event instead. Otherwise compute less where the figure is timed.\n"
                    + figures
                )
            else:
                counted = min(cpu, cap)
                error = ExampleError(
                    f"{location(example, index)}: on the real clock this printed {real} ms "
                    f"where the recorded output says {recorded} ms. {during[0].upper()}"
                    f"{during[1:]}, the machine delayed the run by {lag} ms (timers fired "
                    "late, the loop's thread waited for a core, first imports) and the "
                    f"block's own code used {cpu} ms of CPU, which a virtual clock does not "
                    f"count (up to {cap} ms of it is allowed); that leaves "
                    f"{real - recorded - lag - counted} ms that nothing explains (allowed: "
                    f"{REAL_LATE_MS} ms). Something waited in real time that the virtual clock "
                    "skips: a thread, a subprocess, a real socket. Move that wait onto the "
                    "event loop's clock (a simulated service), or run the block with "
                    'stack="real" if it talks to a real server.\n' + figures
                )
            error.machine_lag_ms = lag
            raise error
    return pairs


def same_but_for_noise(example: CodeExample, new_source: str) -> bool:
    """Whether a real run printed what is recorded, each figure within REAL_LATE_MS."""
    pairs_of_lines = _align(example.source.splitlines(), new_source.splitlines())
    if pairs_of_lines is None:
        return False
    return all(
        abs(int(recorded) - int(real)) <= REAL_LATE_MS
        for _, recorded_line, real_line in pairs_of_lines
        for recorded, real in zip(_MS.findall(recorded_line), _MS.findall(real_line), strict=True)
    )


def _align(recorded: list[str], real: list[str]) -> list[tuple[int, str, str]] | None:
    """Pair each recorded line with the real-clock line it corresponds to.

    Lines must have the same shape in the same order, except inside a
    timeline chart, where calls that started within a millisecond of each
    other may swap places on a real clock: there, lines pair up by shape.
    """
    if len(recorded) != len(real):
        return None
    pairs = []
    index = 0
    while index < len(recorded):
        end = index + 1
        if "→" in recorded[index]:
            while end < len(recorded) and "→" in recorded[end]:
                end += 1
        ours = sorted(range(index, end), key=lambda i: _shape(recorded[i]))
        theirs = sorted(range(index, end), key=lambda i: _shape(real[i]))
        for i, j in zip(ours, theirs, strict=True):
            if _shape(recorded[i]) != _shape(real[j]):
                return None
            pairs.append((i, recorded[i], real[j]))
        index = end
    return pairs


def _pairs(a: str, b: str) -> list[tuple[int, int]]:
    return [(int(x), int(y)) for x, y in zip(_MS.findall(a), _MS.findall(b), strict=True)]


def _first_difference(old: str, new: str) -> int:
    for index, (a, b) in enumerate(zip(old.splitlines(), new.splitlines(), strict=False)):
        if a != b:
            return index
    return min(len(old.splitlines()), len(new.splitlines()))


def _diff(example: CodeExample, new_source: str) -> str:
    name = relative(example.path)
    lines = difflib.unified_diff(
        example.source.splitlines(),
        new_source.splitlines(),
        f"{name} (recorded)",
        f"{name} (this run)",
        lineterm="",
        n=2,
    )
    # Hunk headers count from the Markdown file's first line, not the block's.
    offset = example.start_line

    def shift(match: re.Match[str]) -> str:
        return f"{match.group(1)}{int(match.group(2)) + offset}"

    return "\n".join(
        re.sub(r"([-+])(\d+)", shift, line) if line.startswith("@@") else line for line in lines
    )


# --- Lint and format -----------------------------------------------------------------


@functools.cache
def _ruff_binary() -> str:
    """The pinned ruff's own executable: `python -m ruff` starts a Python per call."""
    from ruff import find_ruff_bin

    return os.fsdecode(find_ruff_bin())


def ruff(*args: str, source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_ruff_binary(), *args],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def ruff_check(example: CodeExample) -> None:
    result = ruff(
        "check",
        "--isolated",
        f"--line-length={LINE_LENGTH}",
        f"--select={RUFF_RULES}",
        f"--ignore={RUFF_IGNORE}",
        "--target-version=py311",
        "--output-format=concise",
        "--stdin-filename=block.py",
        "-",
        source=example.source,
    )
    if result.returncode != 0:
        found = re.sub(
            r"^block\.py:(\d+):",
            lambda m: f"{location(example, int(m.group(1)) - 1)}:",
            result.stdout,
            flags=re.M,
        )
        raise ExampleError(f"ruff found problems in the block at {location(example)}:\n{found}")


def ruff_formatted(source: str) -> str:
    """The block as `ruff format` writes it, keeping `#>` output lines as they are."""
    protected = re.sub(r"^( *#)> ", r"\1 > ", source, flags=re.M)
    result = ruff("format", "--isolated", f"--line-length={LINE_LENGTH}", "-", source=protected)
    if result.returncode != 0:
        raise ExampleError(result.stderr)
    return re.sub(r"^( *#) > ", r"\1> ", result.stdout, flags=re.M)


def string_statements(source: str) -> list[tuple[ast.Expr, bool]]:
    """Each string statement that is not a docstring, and whether it is recorded output.

    pytest-examples records a print's multi-line output as a string statement
    right after it, with no `#>` lines between; any other one is output an
    earlier update left behind.
    """
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        for name in ("body", "orelse", "finalbody"):
            statements = getattr(node, name, None)
            if not isinstance(statements, list):
                continue
            documented = isinstance(
                node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
            )
            for index, statement in enumerate(statements):
                if not (
                    isinstance(statement, ast.Expr)
                    and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                ):
                    continue
                if index == 0 and name == "body" and documented:
                    continue  # a docstring
                before = statements[index - 1] if index else None
                recorded = (
                    before is not None
                    and _is_print(before)
                    and not any(
                        line.strip().startswith("#>")
                        for line in lines[(before.end_lineno or 0) : statement.lineno - 1]
                    )
                )
                found.append((statement, recorded))
    return sorted(found, key=lambda pair: pair[0].lineno)


def _is_print_call(node: ast.AST) -> TypeGuard[ast.Call]:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    )


def _is_print(statement: ast.stmt | None) -> bool:
    return isinstance(statement, ast.Expr) and _is_print_call(statement.value)


def check_no_stray_output(example: CodeExample) -> None:
    """Fail on a string statement that is neither a docstring nor recorded output."""
    stray = [string for string, recorded in string_statements(example.source) if not recorded]
    if stray:
        raise ExampleError(
            f"{location(example, stray[0].lineno - 1)}: a string statement that is "
            "neither a docstring nor the output recorded under a print: output an "
            "earlier update left behind? Delete it; `make update-examples` records "
            "what the block prints."
        )


def check_format(example: CodeExample) -> None:
    formatted = ruff_formatted(example.source)
    if formatted != example.source:
        raise ExampleError(
            f"{location(example, _first_difference(example.source, formatted))}: "
            "the block is not formatted as `ruff format` would write it; "
            "`make update-examples` fixes it.\n" + _diff(example, formatted)
        )
