"""Property-based tests of `examples.settle`, on asyncio and on Trio.

Hypothesis draws a mix of calls: each one returns after a random latency,
raises, hangs, or waits on a shared future that another task cancels; any
call may have its own deadline (`within()`), and the caller may have one
too. Every scenario runs on a virtual clock (looptime for asyncio, Trio's
MockClock), so hundreds of them take a few seconds of wall time. For each,
the invariants are:

- each position holds its own call's value or error (the very object it
  raised), a TimeoutError if its own deadline passed first, or the
  cancellation of the shared future it waited on;
- when the caller's deadline passes first, settle() does not return: the
  cancellation propagates, and every call still running is cancelled;
- when settle() returns or raises, every call has ended and no task is left
  (nothing runs after it);
- no coroutine is left unawaited;
- on asyncio, the outcomes are the ones `asyncio.gather(...,
  return_exceptions=True)` reports for the same calls.

`EXAMPLES` scenarios run per backend (hypothesis `max_examples`); the test
prints how many ran (`pytest -s` shows it) and checks that all of them did.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import looptime
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.settle import Failed, Ok, Outcome, settle, within

EXAMPLES = 200

KINDS = ("value", "error", "hang", "shared")


class CallError(Exception):
    """What a failing call raises; its index says whose error it is."""


@dataclass(frozen=True)
class CallSpec:
    kind: str  # value | error | hang | shared
    latency_ms: int  # when it returns or raises; for "shared", when the future is cancelled
    own_deadline_ms: float | None  # within()

    def ends_at(self) -> float:
        """When this call ends inside settle, if nothing cancels it from outside."""
        natural = math.inf if self.kind == "hang" else float(self.latency_ms)
        if self.own_deadline_ms is None:
            return natural
        return min(natural, self.own_deadline_ms)

    def times_out(self) -> bool:
        return self.own_deadline_ms is not None and self.own_deadline_ms < (
            math.inf if self.kind == "hang" else self.latency_ms
        )


@dataclass(frozen=True)
class Scenario:
    calls: tuple[CallSpec, ...]
    caller_deadline_ms: float | None

    def caller_cancelled(self) -> bool:
        last = max(call.ends_at() for call in self.calls)
        return self.caller_deadline_ms is not None and self.caller_deadline_ms < last


def offset_ms(low: int, high: int, offset: float) -> st.SearchStrategy[float]:
    """Whole milliseconds plus `offset`, so that two kinds of event never tie."""
    return st.integers(low, high).map(lambda ms: ms + offset)


# Calls end on whole milliseconds, their own deadlines at +0.5 ms, the
# caller's deadline at +0.25 ms: which comes first is never a tie.
def own_deadlines() -> st.SearchStrategy[float]:
    return offset_ms(0, 300, 0.5)


def caller_deadlines() -> st.SearchStrategy[float]:
    return offset_ms(0, 300, 0.25)


call_specs = st.builds(
    CallSpec,
    kind=st.sampled_from(KINDS),
    latency_ms=st.integers(0, 300),
    own_deadline_ms=st.none() | own_deadlines(),
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    calls = tuple(draw(st.lists(call_specs, min_size=1, max_size=6)))
    caller_deadline = draw(st.none() | caller_deadlines())
    if caller_deadline is None and any(math.isinf(call.ends_at()) for call in calls):
        # A call that hangs with no deadline at all would wait forever.
        caller_deadline = draw(caller_deadlines())
    return Scenario(calls, caller_deadline)


# --- Running a scenario -----------------------------------------------------------


@dataclass
class Record:
    """What the calls of one run did."""

    started: set[int] = field(default_factory=set)
    ended: dict[int, str] = field(default_factory=dict)  # index -> "returned" | "raised" | ...
    errors: dict[int, BaseException] = field(default_factory=dict)
    last_activity: float = -math.inf  # loop time of the last thing a call did


def make_calls(
    scenario: Scenario,
    record: Record,
    new_future: Callable[[], Any],
    cancel_future: Callable[[Any], None],
) -> tuple[list[Awaitable[Any]], list[Callable[[], Coroutine[Any, Any, None]]]]:
    """The awaitables to settle, and the tasks that cancel the shared futures."""
    awaitables: list[Awaitable[Any]] = []
    cancellers: list[Callable[[], Coroutine[Any, Any, None]]] = []

    def note() -> None:
        record.last_activity = anyio.current_time()

    for index, spec in enumerate(scenario.calls):
        future = new_future() if spec.kind == "shared" else None

        async def call(index: int = index, spec: CallSpec = spec, future: Any = future) -> Any:
            record.started.add(index)
            note()
            try:
                if spec.kind == "hang":
                    await anyio.sleep_forever()
                if spec.kind == "shared":
                    result = await future
                else:
                    await anyio.sleep(spec.latency_ms / 1000)
                note()
                if spec.kind == "error":
                    error = CallError(index)
                    record.errors[index] = error
                    raise error
                record.ended[index] = "returned"
                return ("value", index) if spec.kind == "value" else result
            except anyio.get_cancelled_exc_class():
                note()
                record.ended.setdefault(index, "cancelled")
                raise
            except BaseException:
                note()
                record.ended.setdefault(index, "raised")
                raise

        coroutine = call()
        if spec.own_deadline_ms is not None:
            awaitables.append(within(spec.own_deadline_ms / 1000, coroutine))
        else:
            awaitables.append(coroutine)
        if future is not None:

            async def cancel_later(spec: CallSpec = spec, future: Any = future) -> None:
                await anyio.sleep(spec.latency_ms / 1000)
                cancel_future(future)

            cancellers.append(cancel_later)
    return awaitables, cancellers


def shared_failure(backend: str) -> type[BaseException]:
    """What awaiting a shared future that someone else cancelled raises."""
    return asyncio.CancelledError if backend == "asyncio" else anyio.FutureCancelled


def check_outcome(
    backend: str, index: int, spec: CallSpec, outcome: Outcome[Any], record: Record
) -> None:
    where = f"call {index} ({spec})"
    if spec.times_out():
        assert isinstance(outcome, Failed), where
        assert isinstance(outcome.error, TimeoutError), where
    elif spec.kind == "value":
        assert outcome == Ok(("value", index)), where
    elif spec.kind == "error":
        assert isinstance(outcome, Failed), where
        assert outcome.error is record.errors[index], f"{where}: another call's error"
    elif spec.kind == "shared":
        assert isinstance(outcome, Failed), where
        assert isinstance(outcome.error, shared_failure(backend)), where
    else:
        raise AssertionError(f"{where}: a hang without a deadline returned {outcome}")


def other_tasks(backend: str) -> list[str]:
    """Tasks started by the current one (or by anything else, on asyncio) still alive."""
    if backend == "asyncio":
        me = asyncio.current_task()
        return [repr(task) for task in asyncio.all_tasks() if task is not me and not task.done()]
    # On Trio every task settle() starts is a descendant of the current task.
    found: list[str] = []
    stack = [trio.lowlevel.current_task()]
    while stack:
        for nursery in stack.pop().child_nurseries:
            found.extend(task.name for task in nursery.child_tasks)
            stack.extend(nursery.child_tasks)
    return found


async def run_scenario(backend: str, scenario: Scenario) -> None:
    record = Record()
    if backend == "asyncio":
        loop = asyncio.get_running_loop()
        new_future: Callable[[], Any] = loop.create_future
    else:
        new_future = anyio.Future

    def cancel_future(future: Any) -> None:
        future.cancel()

    awaitables, cancellers = make_calls(scenario, record, new_future, cancel_future)
    outcomes: tuple[Outcome[Any], ...] | None = None
    async with anyio.create_task_group() as helpers:
        for canceller in cancellers:
            helpers.start_soon(canceller)
        deadline = scenario.caller_deadline_ms
        with anyio.move_on_after(math.inf if deadline is None else deadline / 1000) as caller:
            outcomes = await settle(*awaitables)
        ended_at = anyio.current_time()
        # Nothing runs after settle() has returned or raised: every call that
        # started has ended, and no task of settle's is left.
        assert record.started == set(record.ended), "a call was still running"
        helpers.cancel_scope.cancel()  # the cancellers are the test's, not settle's
    assert other_tasks(backend) == [], "settle() left a task behind"
    await anyio.sleep(1)  # anything left behind would act now
    assert record.last_activity <= ended_at, "a call ran after settle() ended"

    if scenario.caller_cancelled():
        limit = scenario.caller_deadline_ms
        assert limit is not None
        assert caller.cancelled_caught, "the caller's cancellation did not propagate"
        assert outcomes is None, "settle() returned although its caller was cancelled"
        for index, spec in enumerate(scenario.calls):
            if spec.ends_at() > limit:
                assert record.ended.get(index, "cancelled") == "cancelled", index
        return
    assert not caller.cancelled_caught
    assert outcomes is not None and len(outcomes) == len(scenario.calls)
    for index, (spec, outcome) in enumerate(zip(scenario.calls, outcomes, strict=True)):
        check_outcome(backend, index, spec, outcome, record)


async def gathered(scenario: Scenario) -> list[str]:
    """The same calls through asyncio.gather(return_exceptions=True), normalized."""
    record = Record()
    loop = asyncio.get_running_loop()
    awaitables, cancellers = make_calls(scenario, record, loop.create_future, lambda f: f.cancel())
    async with asyncio.TaskGroup() as helpers:
        for canceller in cancellers:
            helpers.create_task(canceller())
        results = await asyncio.gather(*awaitables, return_exceptions=True)
    return [normalize(result) for result in results]


def normalize(result: Any) -> str:
    """An outcome or a gathered result as text: the value, or the error's type."""
    if isinstance(result, Ok):
        return f"ok {result.value!r}"
    if isinstance(result, Failed):
        result = result.error
    if isinstance(result, CallError):
        return f"error {result!r}"  # which call's error it is
    if isinstance(result, BaseException):
        return f"error {type(result).__name__}"  # gather adds a message to CancelledError
    return f"ok {result!r}"


async def settled(scenario: Scenario) -> list[str]:
    record = Record()
    loop = asyncio.get_running_loop()
    awaitables, cancellers = make_calls(scenario, record, loop.create_future, lambda f: f.cancel())
    async with anyio.create_task_group() as helpers:
        for canceller in cancellers:
            helpers.start_soon(canceller)
        outcomes = await settle(*awaitables)
    return [normalize(outcome) for outcome in outcomes]


# --- The tests ----------------------------------------------------------------------


def run_virtual(backend: str, main: Callable[[], Awaitable[Any]]) -> Any:
    """One run on a fresh virtual clock (see tests/conftest.py's anyio_backend)."""
    if backend == "asyncio":
        options: dict[str, Any] = {"loop_factory": looptime.new_event_loop}
    else:
        options = {"clock": trio.testing.MockClock(autojump_threshold=0)}
    return anyio.run(main, backend=backend, backend_options=options)


@contextlib.contextmanager
def no_coroutine_left_unawaited() -> Iterator[None]:
    """Fail if any coroutine created inside was never awaited."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()  # once for all runs: a collection per run would cost more than the run
    leaks = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert not leaks, leaks


PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # wall time varies with the machine's load; the clock is virtual
    database=None,  # no .hypothesis/ directory in the repository
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_settle_keeps_every_outcome_and_leaves_nothing_running(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = 0

    @PROPERTY_SETTINGS
    @given(scenario=scenarios())
    def check(scenario: Scenario) -> None:
        nonlocal ran
        ran += 1
        run_virtual(backend, lambda: run_scenario(backend, scenario))

    with no_coroutine_left_unawaited():
        check()
    with capsys.disabled():
        print(f"\n{backend}: {ran} settle() scenarios ran")
    assert ran >= EXAMPLES


def test_settle_reports_what_asyncio_gather_reports(capsys: pytest.CaptureFixture[str]) -> None:
    ran = 0

    @PROPERTY_SETTINGS
    @given(scenario=scenarios().filter(lambda s: s.caller_deadline_ms is None))
    def check(scenario: Scenario) -> None:
        nonlocal ran
        ran += 1
        assert run_virtual("asyncio", lambda: settled(scenario)) == run_virtual(
            "asyncio", lambda: gathered(scenario)
        )

    with no_coroutine_left_unawaited():
        check()
    with capsys.disabled():
        print(f"\nasyncio.gather comparison: {ran} scenarios ran")
    assert ran >= EXAMPLES
