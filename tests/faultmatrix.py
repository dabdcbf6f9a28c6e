"""Run doc blocks with each simulated call failing, or hanging, in turn.

A block's normal run on the virtual asyncio clock says how many simulated
calls it makes (its *baseline*). The fault matrix then runs it once per call
with that call failing (`services.faults.fail_call_number`), and, when the
block sets a deadline, once per call with that call hanging
(`services.faults.stall_call_number`). Each run must end in one of two ways:

- the block handles the failure and completes;
- the block raises it to its caller: a `ServiceError` or `TimeoutError`, or
  an exception group holding nothing else;

and in both cases leave no task pending, no coroutine unawaited, no task
exception unretrieved, and no write committed after the auth or validation
it depends on failed (read from the block's timelines).

Everything runs on virtual clocks, so a few hundred runs take seconds.
`python -m tests.faultmatrix` prints the matrix's size per page.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
import trio._core._run as trio_run
from pytest_examples import CodeExample, find_examples

from examples import services, timeline
from tests import harness
from tests.harness import (
    DOCS,
    FAULT_CLOCKS,
    ExampleError,
    Settings,
    clocks_for,
    exception_tree,
    run_block,
)

# Source text that means the block puts a deadline on its calls; only such a
# block is expected to survive a call that never returns.
DEADLINE_MARKERS = ("asyncio.timeout(", "fail_after(", "move_on_after(", "wait_for(")

# What a block may let escape when a call fails or hangs.
ALLOWED_ERRORS = (services.ServiceError, TimeoutError)

# A write may commit only if the calls it depends on succeeded.
WRITES = tuple(name for name in services.NEEDS if name.startswith("db."))

# In a stall run the stalled call waits this many virtual seconds (a day)
# instead of forever; if nothing cancelled it by then, no deadline covers it.
FOREVER_SECONDS = 86_400


def all_examples(docs: Path = DOCS) -> list[CodeExample]:
    return list(find_examples(*sorted(docs.rglob("*.md"))))


_CORRECT_TAB = re.compile(r'^=== "(asyncio|AnyIO)"\s*$')


def correct_tab(example: CodeExample) -> str | None:
    """ "asyncio" or "AnyIO" if the block is a correct version in a content tab, else None.

    The tab is the nearest line above the fence that is indented less than it.
    """
    if not example.indent:
        return None
    lines = example.path.read_text().splitlines()
    for text in reversed(lines[: example.start_line - 1]):
        if text.strip() and len(text) - len(text.lstrip()) < example.indent:
            match = _CORRECT_TAB.match(text.strip())
            return match[1] if match else None
    return None


def has_deadline(example: CodeExample) -> bool:
    return any(marker in example.source for marker in DEADLINE_MARKERS)


def deadline_lines(example: CodeExample) -> list[str]:
    """Each line of the block that sets a deadline, as "line N: `code`" (N on the page).

    A `SharedCache` counts too: its `fill_timeout` (30 s unless given) bounds
    every load the cache runs, though not the other calls of the block.
    """
    found = []
    for index, code in enumerate(example.source.splitlines()):
        where = f"line {example.start_line + 1 + index}: `{code.strip()}`"
        if any(marker in code for marker in DEADLINE_MARKERS):
            found.append(where)
        elif "SharedCache(" in code or "fill_timeout" in code:
            found.append(f"{where}, whose fill_timeout bounds only the cache's loads")
    return found


# --- Stall runs that end ------------------------------------------------------------


class _Hung(Exception):
    """A stall run where nothing was left to happen: the block would wait forever."""


@contextlib.contextmanager
def stalled_calls_give_up(stall_run: bool) -> Iterator[list[bool]]:
    """In a stall run, a stalled call gives up after a virtual day.

    A block whose deadline does not cover the stalled call then ends, and the
    run is reported as hung (the yielded list holds True) instead of hanging.
    """
    hung: list[bool] = []

    async def sleep_forever() -> None:
        await anyio.sleep(FOREVER_SECONDS)
        hung.append(True)
        raise _Hung(f"nothing cancelled a stalled call within {FOREVER_SECONDS} s")

    with pytest.MonkeyPatch.context() as patch:
        if stall_run:
            patch.setattr(anyio, "sleep_forever", sleep_forever)
        yield hung


# --- Baseline --------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """A block's normal run."""

    example: CodeExample
    calls: int  # simulated calls the run made
    error: str | None  # the run failed (test_docs reports why)
    unguarded_write: str | None  # the normal run already writes after a failed check

    @property
    def name(self) -> str:
        return str(self.example)


def baseline(example: CodeExample, tmp_path: Path) -> Baseline:
    settings = Settings.of(example)
    if settings.skip:
        return Baseline(example, 0, f"skipped: {settings.skip}", None)
    if not clocks_for(example):
        return Baseline(example, 0, "not run: it only includes a file", None)
    if settings.stack == "real":
        # Real servers, not simulated services: there is no call to fail.
        return Baseline(example, 0, "not run: it talks to real servers", None)
    try:
        _, observed = run_block(example, "asyncio", tmp_path)
    except ExampleError as exc:
        calls = exc.observed.calls_made if exc.observed else 0
        return Baseline(example, calls, str(exc).splitlines()[0], None)
    write = (unguarded_writes(timeline.opened) or [None])[0]
    return Baseline(example, observed.calls_made, None, write)


def baselines(examples: list[CodeExample]) -> list[Baseline]:
    with tempfile.TemporaryDirectory() as tmp:
        return [baseline(example, Path(tmp)) for example in examples]


# --- The matrix ------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultCase:
    base: Baseline
    kind: str  # "fail" or "stall"
    number: int  # which call (0 = first) fails or hangs
    clock: str  # "asyncio" or "trio"

    def __str__(self) -> str:
        return f"{self.base.name}:{self.kind}-call-{self.number}:{self.clock}"

    def prepare(self) -> None:
        if self.clock == "trio":
            # Trio runs tasks that became ready together in a random order, so
            # "call N" could name a different call on each run. A fixed seed
            # makes every run of this case break the same call.
            trio_run._r.seed(f"{self}")
        if self.kind == "fail":
            services.faults.fail_call_number = self.number
        else:
            services.faults.stall_call_number = self.number


def cases(bases: list[Baseline]) -> list[FaultCase]:
    found = []
    for base in bases:
        if base.error or not base.calls:
            continue
        clocks = [clock for clock in clocks_for(base.example) if clock in FAULT_CLOCKS]
        kinds = ["fail", "stall"] if has_deadline(base.example) else ["fail"]
        for kind in kinds:
            for number in range(base.calls):
                for clock in clocks:
                    found.append(FaultCase(base, kind, number, clock))
    return found


@dataclass
class Outcome:
    handled: bool  # the block completed
    raised: str | None  # what it raised to its caller ("ServiceUnavailable: ...")
    hung: bool  # a stall run with nothing left to happen
    problems: list[str]
    hung_reason: str | None = None  # for a hung run: which call, and why nothing ended it


def hung_reason(case: FaultCase) -> str:
    """Why a hung stall run has nothing to check: the call no deadline of the block encloses.

    Read right after the run: the hung call's span is the one `_Hung` ended.
    """
    spans = [span for opened in timeline.opened for span in opened.spans]
    labels = [span.label for span in spans if span.outcome == f"failed: {_Hung.__name__}"]
    call = f"call {case.number}" + (f", {labels[0]}," if labels else "")
    deadlines = "; ".join(deadline_lines(case.base.example))
    return (
        f"{case.base.name}: when {call} hangs, nothing cancels it: none of the block's "
        f"deadlines ({deadlines}) encloses that call, so the block waits for it "
        "forever, as it would for that service hung, and the run has nothing to check "
        "(a deadline around that call would give it an end to check)"
    )


def run_case(case: FaultCase, tmp_path: Path) -> Outcome:
    """Run one fault case; `problems` lists every broken rule, with the failing call."""
    raised: BaseException | None = None
    with stalled_calls_give_up(case.kind == "stall") as hung_flag:
        try:
            _, observed = run_block(case.base.example, case.clock, tmp_path, prepare=case.prepare)
        except ExampleError as exc:
            raised, observed = exc.raised, exc.observed
    hung = bool(hung_flag) or (
        raised is not None and any(isinstance(e, _Hung) for e in exception_tree(raised))
    )
    description = f"{type(raised).__name__}: {raised}" if raised is not None else None
    if hung:
        return Outcome(False, description, True, [], hung_reason(case))
    problems = leak_problems(case, observed)
    if raised is not None:
        problems += escaped_problems(raised)
    if not case.base.unguarded_write:
        problems += unguarded_writes(timeline.opened)
    return Outcome(description is None, description, False, problems)


def leak_problems(case: FaultCase, observed: harness.Observed | None) -> list[str]:
    """Leaks the harness saw, whether or not the block raised."""
    if observed is None:
        return []
    return harness._problems(Settings.of(case.base.example), observed)


def escaped_problems(raised: BaseException) -> list[str]:
    """What escaped the block, if it is not a service failure or a timeout."""
    if isinstance(raised, BaseExceptionGroup):
        _, rest = raised.split(ALLOWED_ERRORS)
        if rest is None:
            return []
        raised = rest
    elif isinstance(raised, ALLOWED_ERRORS):
        return []
    return [f"the block raised {type(raised).__name__}: {raised}"]


def unguarded_writes(timelines: list[timeline.Timeline]) -> list[str]:
    """Writes that committed although a call they depend on had just failed.

    For each committed write, look at each call it needs: the latest such
    call that started before the write finished is the one whose answer the
    write went ahead on. If that call failed, the write should not exist.
    """
    found = []
    for opened in timelines:
        for write in opened.spans:
            if write.service not in WRITES or write.outcome != "ok" or write.end is None:
                continue
            for needed in services.NEEDS[write.service]:
                before = [s for s in opened.spans if s.service == needed and s.start <= write.end]
                if before and before[-1].outcome.startswith("failed"):
                    found.append(
                        f"{write.label} committed at {write.end_ms} ms although "
                        f"{before[-1].label} {before[-1].outcome} at {before[-1].end_ms} ms"
                    )
    return found


def failing_call(case: FaultCase) -> str:
    """The label of the call the case broke, read from the run's timelines."""
    wanted = "failed: ServiceUnavailable" if case.kind == "fail" else "cancelled"
    for opened in timeline.opened:
        for span in opened.spans:
            if span.outcome == wanted:
                return span.label
    return f"call {case.number}"


def summary(bases: list[Baseline], found: list[FaultCase]) -> str:
    lines = []
    for base in bases:
        mine = [case for case in found if case.base is base]
        if base.error:
            lines.append(f"{base.name}: not in the matrix ({base.error})")
        elif not base.calls:
            lines.append(f"{base.name}: no simulated calls")
        else:
            fails = sum(case.kind == "fail" for case in mine)
            stalls = sum(case.kind == "stall" for case in mine)
            lines.append(
                f"{base.name}: {base.calls} calls -> {fails} fail runs, {stalls} stall runs"
            )
    lines.append(f"total: {len(found)} fault runs")
    return "\n".join(lines)


if __name__ == "__main__":
    bases = baselines(all_examples())
    print(summary(bases, cases(bases)))
