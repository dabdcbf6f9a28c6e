# /// script
# requires-python = ">=3.11"
# dependencies = ["anyio>=4.15"]
# ///
"""Wait for every call and keep each outcome, like JavaScript's allSettled.

A task group fails fast: the first error cancels the other tasks. Sometimes
you want the opposite: every call runs to the end, and you decide per result
what a failure means (a default for a widget, a log line). `settle()` does
that on any AnyIO backend, asyncio or Trio, and keeps each position's type:
in `user, posts = await settle(fetch_user(1), fetch_posts(1))`, `user` is an
`Outcome[User]` and `posts` an `Outcome[list[str]]`. On plain asyncio,
`asyncio.gather(..., return_exceptions=True)` does the same job.

Cancellation of the caller is not an outcome: if the code awaiting
`settle()` is cancelled (a deadline, a server shutting down), every call is
cancelled with it and the cancellation propagates. A call that raises
`CancelledError` while its caller is *not* cancelled (it awaited a shared
task or future that someone else cancelled) has failed like any other
call: it becomes `Failed(CancelledError())`, like the `CancelledError('')`
that `asyncio.gather(..., return_exceptions=True)` returns.

A call's `KeyboardInterrupt` or `SystemExit` is not an outcome either: the
program is stopping. It propagates bare, as from `asyncio.gather()`, so that
`except KeyboardInterrupt` and a `SystemExit`'s exit status still work. (On
asyncio it may leave the event loop at once, as asyncio lets these two do
from any task; on Trio, settle() takes it out of the task group's
`BaseExceptionGroup`.)

To give one call its own deadline, wrap it in `within()`: a call that takes
too long becomes `Failed(TimeoutError())` and the others go on.

A call can be a coroutine, which belongs to this `settle()` alone, or an
asyncio Task or Future that other requests await too. A shared one is never
cancelled on this caller's behalf: when this caller's deadline passes or it
is cancelled, it stops waiting (through `asyncio.shield()`), and the task
runs on for everyone else. Trio has no task object that others can await:
a call there is always a coroutine of its own (an `anyio.Future` is not
cancelled by a waiter that stops waiting either).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, overload

import anyio

__all__ = ["Failed", "Ok", "Outcome", "settle", "value_or", "within"]

T = TypeVar("T")
D = TypeVar("D")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")


@dataclass(frozen=True)
class Ok(Generic[T]):
    """The call returned `value`."""

    value: T


@dataclass(frozen=True)
class Failed:
    """The call raised `error`.

    `error` is a `BaseException`: besides any `Exception`, it can be the
    `CancelledError` of a shared task or future that was cancelled.
    """

    error: BaseException


Outcome: TypeAlias = Ok[T] | Failed


# One overload per number of calls keeps each position's type, as
# anyio.gather() does; more than six calls share one type.
@overload
async def settle() -> tuple[()]: ...
@overload
async def settle(call1: Awaitable[T1], /) -> tuple[Outcome[T1]]: ...
@overload
async def settle(
    call1: Awaitable[T1], call2: Awaitable[T2], /
) -> tuple[Outcome[T1], Outcome[T2]]: ...
@overload
async def settle(
    call1: Awaitable[T1], call2: Awaitable[T2], call3: Awaitable[T3], /
) -> tuple[Outcome[T1], Outcome[T2], Outcome[T3]]: ...
@overload
async def settle(
    call1: Awaitable[T1],
    call2: Awaitable[T2],
    call3: Awaitable[T3],
    call4: Awaitable[T4],
    /,
) -> tuple[Outcome[T1], Outcome[T2], Outcome[T3], Outcome[T4]]: ...
@overload
async def settle(
    call1: Awaitable[T1],
    call2: Awaitable[T2],
    call3: Awaitable[T3],
    call4: Awaitable[T4],
    call5: Awaitable[T5],
    /,
) -> tuple[
    Outcome[T1],
    Outcome[T2],
    Outcome[T3],
    Outcome[T4],
    Outcome[T5],
]: ...
@overload
async def settle(
    call1: Awaitable[T1],
    call2: Awaitable[T2],
    call3: Awaitable[T3],
    call4: Awaitable[T4],
    call5: Awaitable[T5],
    call6: Awaitable[T6],
    /,
) -> tuple[
    Outcome[T1],
    Outcome[T2],
    Outcome[T3],
    Outcome[T4],
    Outcome[T5],
    Outcome[T6],
]: ...
@overload
async def settle(*calls: Awaitable[T]) -> tuple[Outcome[T], ...]: ...


async def settle(*calls: Awaitable[Any]) -> tuple[Outcome[Any], ...]:
    """Run the calls concurrently, wait for all, return their outcomes in order.

    Each position holds `Ok(value)` or `Failed(error)` for the call passed
    there. When settle() returns, every call has ended.
    """
    outcomes: list[Outcome[Any] | None] = [None] * len(calls)

    async def run(index: int, call: Awaitable[Any]) -> None:
        try:
            outcomes[index] = Ok(await _without_cancelling_shared(call))
        except anyio.get_cancelled_exc_class() as error:
            if _caller_is_cancelled():
                raise  # settle() itself is being cancelled: not an outcome
            outcomes[index] = Failed(error)  # the call's own failure
        except Exception as error:  # reported, not a reason to cancel the rest
            outcomes[index] = Failed(error)

    try:
        async with anyio.create_task_group() as tg:
            for index, call in enumerate(calls):
                tg.start_soon(run, index, call)
    except BaseExceptionGroup as group:
        # Every Exception became an outcome, so what arrives here is a call's
        # KeyboardInterrupt or SystemExit (or a cancellation): raised alone,
        # it goes on bare, not wrapped in a group.
        if len(group.exceptions) == 1 and _is_stopping(group.exceptions[0]):
            raise group.exceptions[0] from None
        raise
    settled = [outcome for outcome in outcomes if outcome is not None]
    if len(settled) != len(calls):
        # Cannot happen: each run() either filled its slot or raised, and a
        # raise would have left the task group above. Checked without
        # `assert`, so that `python -O` cannot turn it into lost results.
        raise RuntimeError("settle(): a call ended without an outcome")
    return tuple(settled)


def _is_stopping(error: BaseException) -> bool:
    """True for a KeyboardInterrupt, a SystemExit and the like (not a cancellation)."""
    return not isinstance(error, (Exception, BaseExceptionGroup, anyio.get_cancelled_exc_class()))


def _caller_is_cancelled() -> bool:
    """True if a cancel scope around the current task has been cancelled.

    AnyIO reports a cancelled scope as an effective deadline of -inf, on
    asyncio and on Trio.
    """
    return anyio.current_effective_deadline() == -math.inf


async def within(seconds: float, call: Awaitable[T]) -> T:
    """Await `call`; raise TimeoutError if it takes longer than `seconds`.

    Inside settle(), each call can have its own deadline:
    `await settle(fetch_user(1), within(0.2, fetch_posts(1)))`.

    A shared asyncio Task or Future is not cancelled when the deadline
    passes: only this wait for it ends.
    """
    with anyio.fail_after(seconds):
        return await _without_cancelling_shared(call)


def _without_cancelling_shared(call: Awaitable[T]) -> Awaitable[T]:
    """`call`, or a shield around it when others may be waiting on it too.

    Cancelling an `await` of an asyncio Task or Future cancels that task for
    every other request awaiting it. `asyncio.shield()` ends only this wait.
    A coroutine belongs to this caller alone, so it is cancelled as usual.
    """
    if asyncio.isfuture(call):  # a Task or Future: a coroutine is never one
        return asyncio.shield(call)
    return call


def value_or(outcome: Outcome[T], default: D) -> T | D:
    """The value of a successful call, or `default` for a failed one."""
    if isinstance(outcome, Ok):
        return outcome.value
    if isinstance(outcome, Failed):
        return default
    # A bare value (say, from asyncio.gather) would silently become the default.
    kind = type(outcome).__name__
    raise TypeError(f"value_or() takes an Ok or a Failed, not {kind}")
