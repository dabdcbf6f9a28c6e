"""Properties of `examples.request_cache`, on asyncio and Trio virtual clocks.

Hypothesis draws a request: cached functions with random latencies, some
failing, some hanging, some calling other cached functions; callers that
arrive at random times, some with their own deadline (a caller cancelled),
sometimes all of them; and sometimes a deadline on the whole request (the
scope cancelled). Each example runs in a fresh event loop on a virtual
clock, so the run takes milliseconds however long the request "lasts".

Invariants checked for every example:

- each caller gets its own call's value, or the error of a call it depends
  on, or gives up at its own deadline: never another key's value;
- a key runs at most once at a time within a scope;
- no cached function runs after its scope has ended;
- no task is left running, no warning is emitted, and the scope's store
  and its call records are freed once the request is over.
"""

from __future__ import annotations

import contextlib
import gc
import math
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import looptime
import pytest
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples import request_cache
from examples.request_cache import RequestCached, request_cached, request_scope

PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,  # a busy machine must not fail a virtual-clock run
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
HANG = 30.0  # seconds: longer than any deadline drawn below


class Boom(Exception):
    """The failure a drawn function raises."""


@dataclass(frozen=True)
class Function:
    latency: float
    outcome: str  # "ok", "fail" or "hang"
    calls: tuple[int, ...]  # cached functions (lower keys) it awaits first


@dataclass(frozen=True)
class Caller:
    key: int
    arrives: float
    deadline: float | None  # its own deadline: None waits as long as needed


@dataclass(frozen=True)
class Request:
    functions: tuple[Function, ...]
    callers: tuple[Caller, ...]
    scope_deadline: float | None  # the whole request cancelled at this time


ms = st.integers(min_value=0, max_value=30).map(lambda n: n / 100)  # 0..300 ms


@st.composite
def requests(draw: st.DrawFn, scope_deadline: bool = True) -> Request:
    count = draw(st.integers(min_value=1, max_value=4))
    functions = tuple(
        Function(
            latency=draw(ms),
            outcome=draw(st.sampled_from(["ok", "ok", "fail", "hang"])),
            calls=tuple(
                draw(st.lists(st.integers(0, key - 1), max_size=2, unique=True)) if key else []
            ),
        )
        for key in range(count)
    )
    every_caller_gives_up = draw(st.booleans())
    callers = tuple(
        Caller(
            key=draw(st.integers(0, count - 1)),
            arrives=draw(ms),
            deadline=(
                draw(ms.map(lambda s: s + 0.01))
                if every_caller_gives_up
                else draw(st.none() | ms.map(lambda s: s + 0.01))
            ),
        )
        for _ in range(draw(st.integers(min_value=1, max_value=8)))
    )
    deadline = draw(st.none() | ms.map(lambda s: s + 0.05)) if scope_deadline else None
    return Request(functions, callers, deadline)


def closure(request: Request, key: int) -> set[int]:
    """`key` and every key it awaits, directly or not."""
    found = {key}
    for called in request.functions[key].calls:
        found |= closure(request, called)
    return found


def expected_value(request: Request, key: int) -> str:
    inner = ",".join(expected_value(request, called) for called in request.functions[key].calls)
    return f"v{key}[{inner}]"


@dataclass
class Observed:
    running: dict[int, int] = field(default_factory=dict)
    most_running: dict[int, int] = field(default_factory=dict)
    runs_after_scope: list[int] = field(default_factory=list)
    scope_open: bool = True
    results: dict[int, str] = field(default_factory=dict)  # caller index -> outcome


def build(request: Request, observed: Observed) -> list[RequestCached[[], str]]:
    functions: list[RequestCached[[], str]] = []
    for key, spec in enumerate(request.functions):

        def make(key: int, spec: Function) -> RequestCached[[], str]:
            async def function() -> str:
                observed.running[key] = observed.running.get(key, 0) + 1
                observed.most_running[key] = max(
                    observed.most_running.get(key, 0), observed.running[key]
                )
                try:
                    inner = [await functions[called]() for called in spec.calls]
                    await anyio.sleep(HANG if spec.outcome == "hang" else spec.latency)
                    if not observed.scope_open:
                        observed.runs_after_scope.append(key)
                    if spec.outcome == "fail":
                        raise Boom(key)
                    return f"v{key}[{','.join(inner)}]"
                finally:
                    observed.running[key] -= 1

            function.__name__ = function.__qualname__ = f"f{key}"
            return request_cached(function)

        functions.append(make(key, spec))
    return functions


async def serve(request: Request) -> tuple[Observed, list[weakref.ref[Any]]]:
    observed = Observed()
    functions = build(request, observed)
    freed: list[weakref.ref[Any]] = []
    tasks_before = len(anyio.get_running_tasks())

    async def caller(index: int, spec: Caller) -> None:
        await anyio.sleep(spec.arrives)
        deadline = math.inf if spec.deadline is None else spec.deadline
        with anyio.move_on_after(deadline):
            try:
                observed.results[index] = f"value {await functions[spec.key]()}"
            except Boom as exc:
                observed.results[index] = f"error {exc.args[0]}"
            return
        observed.results[index] = "gave up"

    scope_deadline = math.inf if request.scope_deadline is None else request.scope_deadline
    with anyio.move_on_after(scope_deadline):
        async with request_scope():
            store = request_cache._current_store.get()
            freed.append(weakref.ref(store))
            async with anyio.create_task_group() as tg:
                for index, spec in enumerate(request.callers):
                    tg.start_soon(caller, index, spec)
            del store
    observed.scope_open = False
    await anyio.sleep(HANG * 2)  # anything left running would finish by now
    assert len(anyio.get_running_tasks()) == tasks_before, "a task was left running"
    return observed, freed


def virtual_clock(backend: str) -> dict[str, Any]:
    if backend == "asyncio":
        return {"loop_factory": looptime.new_event_loop}
    return {"clock": trio.testing.MockClock(autojump_threshold=0)}


@contextlib.contextmanager
def young_garbage_only() -> Iterator[None]:
    """Keep the example's objects in the youngest generation, so that
    `gc.collect(0)` frees its garbage in microseconds, not the whole
    test session's heap in a tenth of a second."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run(request: Request, backend: str) -> tuple[Observed, list[weakref.ref[Any]]]:
    calls: list[weakref.ref[Any]] = []

    class RecordedCall(request_cache._Call):
        """A call record the test can check is freed afterwards."""

        def __init__(self, description: str, **fields: Any) -> None:
            super().__init__(description, **fields)
            calls.append(weakref.ref(self))

    with (
        warnings.catch_warnings(record=True) as caught,
        pytest.MonkeyPatch.context() as patch,
        young_garbage_only(),
    ):
        warnings.simplefilter("always")
        patch.setattr(request_cache, "_Call", RecordedCall)
        observed, freed = anyio.run(
            serve, request, backend=backend, backend_options=virtual_clock(backend)
        )
        gc.collect(0)
    assert [str(warning.message) for warning in caught] == []
    return observed, freed + calls


def check(request: Request, observed: Observed) -> None:
    # At most once at a time per key, and nothing after the scope ended.
    assert all(most <= 1 for most in observed.most_running.values()), observed.most_running
    assert observed.runs_after_scope == []
    for index, spec in enumerate(request.callers):
        outcome = observed.results.get(index)
        depends_on = closure(request, spec.key)
        failing = {key for key in depends_on if request.functions[key].outcome == "fail"}
        if outcome is None:  # the scope was cancelled before this caller finished
            assert request.scope_deadline is not None
        elif outcome.startswith("value "):
            assert outcome == f"value {expected_value(request, spec.key)}"
        elif outcome.startswith("error "):
            assert int(outcome.removeprefix("error ")) in failing
        else:
            assert outcome == "gave up" and spec.deadline is not None


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@PROPERTY_SETTINGS
@given(request=requests())
def test_request_cache_properties(backend: str, request: Request) -> None:
    observed, freed = run(request, backend)
    check(request, observed)
    assert [ref() for ref in freed] == [None] * len(freed), "the store or a call outlived it"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@PROPERTY_SETTINGS
@given(request=requests(scope_deadline=False))
def test_a_caller_that_waits_gets_a_result(backend: str, request: Request) -> None:
    """Without a request deadline, a patient caller always gets a value or an error."""
    observed, _ = run(request, backend)
    for index, spec in enumerate(request.callers):
        if spec.deadline is None:
            assert observed.results[index] != "gave up"


@st.composite
def call_graphs(draw: st.DrawFn) -> tuple[tuple[int, ...], ...]:
    """Cached functions that call any others, cycles included."""
    count = draw(st.integers(min_value=1, max_value=4))
    return tuple(
        tuple(draw(st.lists(st.integers(0, count - 1), max_size=2, unique=True)))
        for _ in range(count)
    )


def has_cycle(graph: tuple[tuple[int, ...], ...], start: int) -> bool:
    def visit(node: int, path: frozenset[int]) -> bool:
        return any(called in path or visit(called, path | {called}) for called in graph[node])

    return visit(start, frozenset({start}))


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@PROPERTY_SETTINGS
@given(graph=call_graphs(), latency=ms)
def test_cycles_raise_and_everything_else_completes(
    backend: str, graph: tuple[tuple[int, ...], ...], latency: float
) -> None:
    async def main() -> tuple[str, ...]:
        functions: list[Callable[[], Awaitable[str]]] = []

        def make(key: int) -> Callable[[], Awaitable[str]]:
            @request_cached
            async def function() -> str:
                await anyio.sleep(latency)
                inner = [await functions[called]() for called in graph[key]]
                return f"v{key}[{','.join(inner)}]"

            return function

        functions.extend(make(key) for key in range(len(graph)))

        async def outcome(key: int) -> str:
            try:
                return await functions[key]()
            except request_cache.CachedCallCycleError:
                return "cycle"

        with anyio.fail_after(60):  # an undetected cycle would wait forever
            async with request_scope():
                return await anyio.gather(*(outcome(key) for key in range(len(graph))))

    outcomes = anyio.run(main, backend=backend, backend_options=virtual_clock(backend))
    for key, outcome in enumerate(outcomes):
        # A cycle reachable from a key fails it; any other key completes.
        if has_cycle(graph, key):
            assert outcome == "cycle", (key, outcome)
        else:
            assert outcome.startswith(f"v{key}["), (key, outcome)
