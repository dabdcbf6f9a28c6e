"""Properties of `examples.shared_cache`, on asyncio and Trio virtual clocks.

Hypothesis draws a stretch of traffic: callers that ask for one of a few
keys at random times, some with their own deadline; loads with random
latencies, some failing; writes that change a key's data and invalidate it
at random times. Each example runs in a fresh event loop on a virtual
clock, so exact times can be compared.

Invariants checked for every example:

- a caller that gets a value gets its own key's data as it was when it
  asked: never another key's, never data older than the last write before
  it asked (no stale value stored after an invalidation);
- a value served from the store is younger than the TTL;
- a load starts only when no load of its key is running, except loads an
  invalidation detached (single flight);
- a caller that fails gets the error of a load that failed for its key;
- nothing is left running, and no warning is emitted.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import looptime
import pytest
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.shared_cache import SharedCache

PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,  # a busy machine must not fail a virtual-clock run
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
KEYS = 3


class Boom(Exception):
    """The failure a drawn load raises."""


@dataclass(frozen=True)
class Caller:
    key: int
    arrives: float
    deadline: float | None


@dataclass(frozen=True)
class Write:
    key: int
    at: float


@dataclass(frozen=True)
class Traffic:
    ttl: float
    error_ttl: float
    latencies: tuple[float, ...]  # the nth load takes latencies[n % len]
    failing: frozenset[int]  # the nth load fails if n % len is in it
    callers: tuple[Caller, ...]
    writes: tuple[Write, ...]


ms = st.integers(min_value=0, max_value=40).map(lambda n: n / 100)  # 0..400 ms


@st.composite
def traffic(draw: st.DrawFn) -> Traffic:
    latencies = tuple(draw(st.lists(ms.map(lambda s: s + 0.01), min_size=1, max_size=5)))
    return Traffic(
        ttl=draw(st.sampled_from([0.05, 0.1, 0.25, 1.0])),
        error_ttl=draw(st.sampled_from([0.0, 0.0, 0.1])),
        latencies=latencies,
        failing=frozenset(draw(st.sets(st.integers(0, len(latencies) - 1), max_size=2))),
        callers=tuple(
            Caller(
                key=draw(st.integers(0, KEYS - 1)),
                arrives=draw(ms),
                deadline=draw(st.none() | ms.map(lambda s: s + 0.01)),
            )
            for _ in range(draw(st.integers(min_value=1, max_value=10)))
        ),
        writes=tuple(
            Write(draw(st.integers(0, KEYS - 1)), draw(ms))
            for _ in range(draw(st.integers(min_value=0, max_value=3)))
        ),
    )


@dataclass
class Load:
    key: int
    version: int  # the key's data as the load read it
    created: int  # in event order: when the caller that missed asked
    ended: float | None = None


@dataclass
class Observed:
    loads: list[Load] = field(default_factory=list)
    # caller index -> ("value", load index, version at arrival, returned at) or ("error", ...)
    results: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    invalidated: dict[int, list[int]] = field(default_factory=dict)  # in event order
    started_beside: list[str] = field(default_factory=list)


async def serve(spec: Traffic) -> Observed:
    observed = Observed()
    versions = [0] * KEYS
    order = itertools.count()  # orders what happens at one virtual instant
    cache: SharedCache[int, tuple[int, int]] = SharedCache(ttl=spec.ttl, error_ttl=spec.error_ttl)

    def loader(key: int) -> Callable[[], Awaitable[tuple[int, int]]]:
        created = next(order)  # the caller calls get() right after, with no await between

        async def load() -> tuple[int, int]:
            number = len(observed.loads)
            last_invalidation = max(observed.invalidated.get(key, [-1]))
            # Only the key's current load (its miss came after the last
            # invalidation) must be alone: a detached one may start late, as
            # Trio runs the tasks made ready together in either order.
            for other in observed.loads if created > last_invalidation else []:
                if other.key == key and other.ended is None and other.created > last_invalidation:
                    observed.started_beside.append(f"load {number} beside load of key {key}")
            observed.loads.append(Load(key, versions[key], created))
            try:
                await anyio.sleep(spec.latencies[number % len(spec.latencies)])
                if number % len(spec.latencies) in spec.failing:
                    raise Boom(number)
                return number, observed.loads[number].version
            finally:
                observed.loads[number].ended = anyio.current_time()

        return load

    async def caller(index: int, who: Caller) -> None:
        await anyio.sleep(who.arrives)
        version_now = versions[who.key]
        with anyio.CancelScope() as scope:
            if who.deadline is not None:
                scope.deadline = anyio.current_time() + who.deadline
            try:
                number, version = await cache.get(who.key, loader(who.key))
            except Boom as exc:
                observed.results[index] = ("error", exc.args[0], who.key)
                return
            observed.results[index] = ("value", number, version_now, version, anyio.current_time())

    async def writer(write: Write) -> None:
        await anyio.sleep(write.at)
        versions[write.key] += 1  # the write commits...
        cache.invalidate(write.key)  # ...and the key is invalidated right after
        observed.invalidated.setdefault(write.key, []).append(next(order))

    async with cache, anyio.create_task_group() as tg:
        for index, who in enumerate(spec.callers):
            tg.start_soon(caller, index, who)
        for write in spec.writes:
            tg.start_soon(writer, write)
    return observed


def run(spec: Traffic, backend: str) -> Observed:
    options: dict[str, Any] = (
        {"loop_factory": looptime.new_event_loop}
        if backend == "asyncio"
        else {"clock": trio.testing.MockClock(autojump_threshold=0)}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        observed = anyio.run(serve, spec, backend=backend, backend_options=options)
    assert [str(warning.message) for warning in caught] == []
    return observed


def check(spec: Traffic, observed: Observed) -> None:
    assert observed.started_beside == []
    for index, result in observed.results.items():
        who = spec.callers[index]
        if result[0] == "error":
            _, number, key = result
            assert key == who.key and observed.loads[number].key == who.key
            assert number % len(spec.latencies) in spec.failing
            continue
        _, number, version_at_arrival, version, returned_at = result
        load = observed.loads[number]
        assert load.key == who.key, "a caller got another key's value"
        assert version == load.version
        # Never older than the last write before the caller asked (a load
        # detached by a write may start after it and read newer data).
        assert version >= version_at_arrival, (
            f"caller {index} asked when key {who.key} was at version {version_at_arrival} "
            f"and got version {version}"
        )
        assert load.ended is not None and load.ended <= returned_at
        # Served from the store: younger than the TTL.
        assert returned_at - load.ended < spec.ttl + 1e-9


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@PROPERTY_SETTINGS
@given(spec=traffic())
def test_shared_cache_properties(backend: str, spec: Traffic) -> None:
    check(spec, run(spec, backend))


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@PROPERTY_SETTINGS
@given(spec=traffic())
def test_a_caller_without_a_deadline_gets_an_outcome(backend: str, spec: Traffic) -> None:
    patient = Traffic(
        spec.ttl,
        spec.error_ttl,
        spec.latencies,
        spec.failing,
        tuple(Caller(who.key, who.arrives, None) for who in spec.callers),
        spec.writes,
    )
    observed = run(patient, backend)
    check(patient, observed)
    assert sorted(observed.results) == list(range(len(patient.callers)))
