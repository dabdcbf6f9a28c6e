"""`examples.hedge`: the first success wins, failures are set aside, nothing is left running.

Every test runs on asyncio and on Trio, each on a virtual clock, so the times
asserted here are exact: a hedge starts at its delay to the millisecond.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import anyio
import pytest

from examples.hedge import first_success, hedged
from examples.services import LATENCY_MS, Replica, ServiceUnavailable, outage, stall
from examples.timeline import Timeline

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python

FAST = LATENCY_MS["replica"]
SLOW = LATENCY_MS["replica.slow"]


def reads(*replicas: Replica) -> list[Callable[[], Awaitable[str]]]:
    """One read of "price" per replica, as the callables the helpers take."""
    return [functools.partial(replica.get, "price") for replica in replicas]


def outcomes(timeline: Timeline) -> dict[str, tuple[int, int, str]]:
    """Each call's start, end (ms) and outcome, by label."""
    return {span.label: (span.start_ms, span.end_ms, span.outcome) for span in timeline.spans}


async def test_the_fastest_replica_wins_and_the_slow_one_is_cancelled() -> None:
    slow, fast = Replica("a", slow=True), Replica("b")
    with Timeline() as timeline:
        answer = await first_success(*reads(slow, fast))
    assert answer == "price from b"
    assert outcomes(timeline) == {
        "a.get(price)": (0, FAST, "cancelled"),
        "b.get(price)": (0, FAST, "ok"),
    }
    assert (slow.calls, fast.calls) == (1, 1)


async def test_a_fast_failure_does_not_win() -> None:
    # The fast replica fails at 40 ms; the slow one's answer is the result.
    failing, slow = Replica("a"), Replica("b", slow=True)
    with Timeline() as timeline, outage("replica"):
        answer = await first_success(*reads(failing, slow))
    assert answer == "price from b"
    assert timeline.total_ms == SLOW
    assert outcomes(timeline)["a.get(price)"][2] == "failed: ServiceUnavailable"


async def test_all_failing_raises_every_failure_in_the_order_they_happened() -> None:
    fast, slow = Replica("a"), Replica("b", slow=True)
    with Timeline() as timeline, outage("replica", "replica.slow"):
        with pytest.raises(ExceptionGroup) as raised:
            await first_success(*reads(slow, fast))
    group = raised.value
    assert group.message == "all 2 calls failed"
    assert [str(error) for error in group.exceptions] == [
        "replica: 503 Service Unavailable",
        "replica.slow: 503 Service Unavailable",
    ]
    assert all(isinstance(error, ServiceUnavailable) for error in group.exceptions)
    assert timeline.total_ms == SLOW  # it waited for the last one to fail


@pytest.mark.parametrize("race", ["first_success", "hedged"])
async def test_cancellation_from_outside_cancels_every_call_and_propagates(race: str) -> None:
    replicas = Replica("a", slow=True), Replica("b", slow=True)
    finished = False
    with Timeline() as timeline, anyio.move_on_after(0.3) as deadline:
        if race == "first_success":
            await first_success(*reads(*replicas))
        else:
            await hedged(*reads(*replicas), delay=0.1)
        finished = True
    assert deadline.cancelled_caught and not finished
    start_of_b = 0 if race == "first_success" else 100
    assert outcomes(timeline) == {
        "a.get(price)": (0, 300, "cancelled"),
        "b.get(price)": (start_of_b, 300, "cancelled"),
    }


@pytest.mark.parametrize("race", ["first_success", "hedged"])
async def test_nothing_is_left_running_when_it_returns(race: str) -> None:
    replicas = Replica("a", slow=True), Replica("b"), Replica("c", slow=True)
    with Timeline() as timeline:
        if race == "first_success":
            await first_success(*reads(*replicas))
        else:
            await hedged(*reads(*replicas), delay=0.01)
        # Every call has ended (won, or cancelled) before the result came back.
        assert [span.end is not None for span in timeline.spans] == [True] * 3
        returned_at = timeline.total_ms  # the timeline is still open: this is now
    assert returned_at == max(span.end_ms for span in timeline.spans)


async def test_the_hedge_starts_exactly_at_its_delay() -> None:
    primary, backup = Replica("a", slow=True), Replica("b")
    with Timeline() as timeline:
        answer = await hedged(*reads(primary, backup), delay=0.05)
    assert answer == "price from b"
    assert outcomes(timeline) == {
        "a.get(price)": (0, 50 + FAST, "cancelled"),
        "b.get(price)": (50, 50 + FAST, "ok"),
    }


async def test_no_hedge_when_the_first_call_answers_in_time() -> None:
    primary, backup = Replica("a"), Replica("b")
    with Timeline() as timeline:
        answer = await hedged(*reads(primary, backup), delay=0.05)
    assert answer == "price from a"
    assert timeline.total_ms == FAST
    assert (primary.calls, backup.calls) == (1, 0)  # the backup was never called


async def test_a_failure_starts_the_next_call_at_once() -> None:
    primary, backup = Replica("a"), Replica("b", slow=True)
    with Timeline() as timeline, outage("replica"):
        answer = await hedged(*reads(primary, backup), delay=1.0)
    assert answer == "price from b"
    # The backup started when the primary failed, not at the 1 s delay.
    assert outcomes(timeline)["b.get(price)"] == (FAST, FAST + SLOW, "ok")


async def test_hedges_start_one_delay_apart() -> None:
    replicas = Replica("a", slow=True), Replica("b", slow=True), Replica("c")
    with Timeline() as timeline:
        answer = await hedged(*reads(*replicas), delay=0.1)
    assert answer == "price from c"
    assert {label: start for label, (start, _, _) in outcomes(timeline).items()} == {
        "a.get(price)": 0,
        "b.get(price)": 100,
        "c.get(price)": 200,
    }


async def test_hedged_all_failing_raises_an_exception_group() -> None:
    with outage("replica"), pytest.raises(ExceptionGroup) as raised:
        await hedged(*reads(Replica("a"), Replica("b")), delay=0.05)
    assert raised.match("all 2 calls failed")
    assert raised.value.subgroup(ServiceUnavailable) is not None


async def test_a_hanging_call_does_not_hold_the_result() -> None:
    with stall("replica.slow"), Timeline() as timeline:
        answer = await hedged(*reads(Replica("a", slow=True), Replica("b")), delay=0.05)
    assert answer == "price from b"
    assert outcomes(timeline)["a.get(price)"] == (0, 50 + FAST, "cancelled")


async def test_no_call_or_a_negative_delay_is_an_error() -> None:
    with pytest.raises(ValueError, match="no call"):
        await first_success()
    with pytest.raises(ValueError, match="delay must be zero or more"):
        await hedged(*reads(Replica("a")), delay=-1)


async def test_a_delay_that_is_not_a_number_is_an_error_before_any_call() -> None:
    replica = Replica("a")
    with pytest.raises(ValueError, match="delay must be zero or more"):
        await hedged(*reads(replica, Replica("b")), delay=float("nan"))
    assert replica.calls == 0


async def test_one_call_is_returned_and_delay_zero_starts_every_call_at_once() -> None:
    with Timeline() as timeline:
        assert await hedged(*reads(Replica("a")), delay=0) == "price from a"
        answer = await hedged(*reads(Replica("b", slow=True), Replica("c")), delay=0)
    assert answer == "price from c"
    assert outcomes(timeline)["b.get(price)"] == (FAST, 2 * FAST, "cancelled")
    assert outcomes(timeline)["c.get(price)"] == (FAST, 2 * FAST, "ok")


async def test_a_success_and_a_failure_in_the_same_moment_return_the_success() -> None:
    async def fails_at(seconds: float) -> str:
        await anyio.sleep(seconds)
        raise ServiceUnavailable("replica: 503 Service Unavailable")

    async def answers_at(seconds: float) -> str:
        await anyio.sleep(seconds)
        return "answer"

    assert await first_success(lambda: fails_at(0.04), lambda: answers_at(0.04)) == "answer"
    assert await first_success(lambda: answers_at(0.04), lambda: fails_at(0.04)) == "answer"


async def test_a_loser_whose_cancellation_fails_does_not_lose_the_winner() -> None:
    async def breaks_when_cancelled() -> str:
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            raise RuntimeError("cleanup failed") from None
        return "never"

    answer = await first_success(breaks_when_cancelled, *reads(Replica("b")))
    assert answer == "price from b"


async def test_a_call_that_is_interrupted_propagates_the_interrupt_itself(
    anyio_backend: tuple[str, dict[str, object]],
) -> None:
    # asyncio re-raises KeyboardInterrupt from a task out of its event loop,
    # so only Trio gets as far as the helper: it must not wrap it in a group.
    if anyio_backend[0] != "trio":
        pytest.skip("asyncio stops the event loop itself on KeyboardInterrupt")

    async def interrupted() -> str:
        await anyio.sleep(0.01)
        raise KeyboardInterrupt

    replica = Replica("b", slow=True)
    with pytest.raises(KeyboardInterrupt):
        await first_success(interrupted, *reads(replica))
    assert replica.calls == 1  # started, then cancelled: nothing left running


async def test_a_call_cancelled_by_its_own_code_propagates_that_cancellation(
    anyio_backend: tuple[str, dict[str, object]],
) -> None:
    # Only asyncio lets a CancelledError come out of a call nobody cancelled
    # (for example, awaiting a future that someone else cancelled).
    if anyio_backend[0] != "asyncio":
        pytest.skip("on Trio a cancellation always comes from a cancel scope")
    import asyncio

    async def awaits_a_cancelled_future() -> str:
        await anyio.sleep(0.1)  # after a replica's answer
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        future.cancel()
        return await future

    with pytest.raises(asyncio.CancelledError):
        await first_success(awaits_a_cancelled_future)
    # A sibling that answers first still wins.
    assert await first_success(awaits_a_cancelled_future, *reads(Replica("b"))) == "price from b"
