"""Wait for every call and keep each outcome, like JavaScript's Promise.allSettled.

A task group fails fast: the first error cancels the other tasks. Sometimes
you want the opposite: every call runs to the end, and you decide per result
what a failure means (a default for a widget, a log line). `settle()` does
that on any AnyIO backend, asyncio or Trio. On plain asyncio,
`asyncio.gather(..., return_exceptions=True)` does the same job.

Cancellation is not an outcome: if the code awaiting `settle()` is cancelled
(a deadline, a server shutting down), every call is cancelled with it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

__all__ = ["Failed", "Ok", "Outcome", "settle", "value_or"]

T = TypeVar("T")
D = TypeVar("D")


@dataclass(frozen=True)
class Ok(Generic[T]):
    """The call returned `value`."""

    value: T


@dataclass(frozen=True)
class Failed:
    """The call raised `error`."""

    error: Exception


Outcome = Ok[T] | Failed


async def settle(*calls: Awaitable[T]) -> list[Outcome[T]]:
    """Run the calls concurrently, wait for all of them, return their outcomes in order."""
    outcomes: list[Outcome[T] | None] = [None] * len(calls)

    async def run(index: int, call: Awaitable[T]) -> None:
        try:
            outcomes[index] = Ok(await call)
        except Exception as error:  # an outcome to report, not a reason to cancel the rest
            outcomes[index] = Failed(error)

    async with anyio.create_task_group() as tg:
        for index, call in enumerate(calls):
            tg.start_soon(run, index, call)
    # Every slot is filled: each call either returned or raised an Exception
    # (anything else propagated out of the task group above).
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def value_or(outcome: Outcome[T], default: D) -> T | D:
    """The value of a successful call, or `default` for a failed one."""
    if isinstance(outcome, Ok):
        return outcome.value
    if isinstance(outcome, Failed):
        return default
    # A bare value (say, from asyncio.gather) would silently become the default.
    raise TypeError(f"value_or() takes an Ok or a Failed, not {type(outcome).__name__}")
