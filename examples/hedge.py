# /// script
# requires-python = ">=3.11"
# dependencies = ["anyio>=4.15"]
# ///
"""Take the first call that succeeds; cancel the others, and wait until they have stopped.

`first_success(a, b)` starts every call at once, like JavaScript's
`Promise.any`: the first call that *returns* wins, and a call that fails is
set aside, however fast it failed. As soon as one call has won, the others
are cancelled, and `first_success()` returns only when they have finished
cancelling: nothing it started is still running when it returns.

`hedged(a, b, delay=0.05)` starts `a` alone, and `b` only if `a` has not
succeeded after `delay` seconds (or as soon as `a` has failed). The second
call is made only for the calls slower than the delay, which is where it
helps, so the load on the backends grows by the share of such calls: at most
5% with the delay at the call's 95th percentile, where starting both every
time doubles it.

Both take callables that return a fresh awaitable, `lambda: replica.get(key)`
or `functools.partial(client.get, url)`, not coroutine objects: a call that
is never started must not leave a coroutine that was never awaited.

When every call fails, both raise an `ExceptionGroup` of the failures in the
order they happened (JavaScript's `AggregateError`); catch it with
`except* SomeError`. Cancellation of the caller (a deadline, a server
shutting down) is not a failure: it cancels every call and propagates. So does
a `KeyboardInterrupt` or `SystemExit` a call raises, as itself, not in a group.
A loser that raises while it is being cancelled does not take the result away:
its error is set aside with the failures.

Only hedge or race calls that are safe to repeat: reads, or writes made
idempotent with a key the server checks. Cancelling a call stops the caller
waiting; whether the server stops working on it is the server's business (an
HTTP server that does not watch for a client's disconnect finishes the work).

Written with AnyIO, so it runs on asyncio and on Trio. It needs nothing else:
copy the file into your project.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

__all__ = ["first_success", "hedged"]

T = TypeVar("T")


async def first_success(*calls: Callable[[], Awaitable[T]]) -> T:
    """Start every call at once; return the first result, cancel and await the rest.

    Raises `ExceptionGroup` of every failure when no call succeeds, and
    `ValueError` when there is no call at all.
    """
    return await _first_success(calls, delay=None)


async def hedged(*calls: Callable[[], Awaitable[T]], delay: float) -> T:
    """Start the calls one by one, each `delay` seconds after the one before.

    The next call starts early when every call started so far has failed, and
    never once one has succeeded. The first result wins; calls still running
    are cancelled and awaited before `hedged()` returns. Raises
    `ExceptionGroup` of every failure when no call succeeds, and `ValueError`
    when there is no call or `delay` is negative.
    """
    if not delay >= 0:  # also refuses NaN, which compares false with everything
        raise ValueError(f"delay must be zero or more seconds, not {delay}")
    return await _first_success(calls, delay=delay)


async def _first_success(calls: tuple[Callable[[], Awaitable[T]], ...], delay: float | None) -> T:
    if not calls:
        raise ValueError("no call to make: pass at least one")
    results: list[T] = []
    failures: list[Exception] = []
    # A cancellation a call raised although nothing here cancelled it (asyncio
    # only: awaiting a future someone else cancelled). The task group swallows
    # it, so it is kept here to be raised again.
    stray_cancellations: list[BaseException] = []
    started = 0
    # Set when every call started so far has failed: the next one starts now.
    all_failed = anyio.Event()

    async def attempt(call: Callable[[], Awaitable[T]]) -> None:
        try:
            result = await call()
        except Exception as failure:  # not BaseException: a cancellation propagates
            failures.append(failure)
            if len(failures) == started:
                all_failed.set()
            return
        except anyio.get_cancelled_exc_class() as cancellation:
            if not group.cancel_scope.cancel_called:
                stray_cancellations.append(cancellation)
            raise
        results.append(result)
        # Cancels the other calls and the loop below that starts them; the
        # task group then waits until every one of them has finished.
        group.cancel_scope.cancel()

    try:
        async with anyio.create_task_group() as group:
            for call in calls:
                all_failed = anyio.Event()
                started += 1
                group.start_soon(attempt, call)
                if delay is not None and started < len(calls):
                    # The next call waits for the delay, or for every call so far to fail.
                    with anyio.move_on_after(delay):
                        await all_failed.wait()
    except BaseExceptionGroup as interrupted:
        # Only what is not an `Exception` gets here (KeyboardInterrupt,
        # SystemExit): raise it as the call raised it, not inside a group.
        raise interrupted.exceptions[0] from None
    if results:
        # Two calls can return in the same moment; the first one recorded wins.
        return results[0]
    if stray_cancellations:
        raise stray_cancellations[0]
    raise ExceptionGroup(f"all {len(calls)} calls failed", failures)
