"""Run each distinct call once per request: a per-request cache for async functions.

Decorate an async function with `@request_cached`, open a request scope at
the request's entry (`async with request_scope():`, or `RequestScopeMiddleware`
around an ASGI app), and every call with the same arguments inside that
request shares one run of the function:

- Calls that come later get the stored result.
- Calls that come while the first one is still running wait for it, so three
  parts of a page asking for the same user at the same moment cause one query.
- Nothing crosses requests: each scope has its own store, dropped at its end.

Choices, each one tested in tests/test_request_cache.py:

- The scope's store lives in a ContextVar. Tasks copy the context when they
  are created, so tasks started inside the request share its store.
- Each call runs in a task of the scope, not in the caller's task. A caller
  that is cancelled stops waiting, and the others still get the result. The
  call itself is cancelled only when no caller waits for it any more.
- A failure is shared with the callers already waiting, and then forgotten:
  a later call in the same request runs the function again.
- Arguments are the cache key, so they must be hashable; an unhashable one
  raises a TypeError that names the function and the argument.
- Calling a cached function outside a request scope raises RuntimeError
  rather than silently running uncached.

Only AnyIO primitives are used, so it works under asyncio and Trio.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import anyio
from anyio.abc import TaskGroup

__all__ = ["RequestScopeMiddleware", "request_cached", "request_scope"]

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Call:
    """One run of a cached function, shared by everyone who asked for it."""

    description: str  # "get_user(1)", for logs and errors
    done: anyio.Event = field(default_factory=anyio.Event)
    cancel_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    waiters: int = 0
    value: Any = None
    error: BaseException | None = None
    traceback: TracebackType | None = None


@dataclass(eq=False)
class _Store:
    """The calls made in one request scope."""

    task_group: TaskGroup
    calls: dict[Hashable, _Call] = field(default_factory=dict)
    # Set when the request ends. A task started during the request that
    # outlives it still sees this store through its copied context.
    closed: bool = False

    def forget(self, key: Hashable, call: _Call) -> None:
        if self.calls.get(key) is call:
            del self.calls[key]


_current_store: ContextVar[_Store | None] = ContextVar("request_cache_store", default=None)


@asynccontextmanager
async def request_scope() -> AsyncIterator[None]:
    """Cache `@request_cached` calls made inside this block, and in tasks it starts.

    When the block ends, the store is dropped and any call still running is
    cancelled. An exception (an `Exception` subclass) raised in the block
    comes out unchanged.
    """
    error: Exception | None = None
    async with anyio.create_task_group() as task_group:
        store = _Store(task_group)
        token = _current_store.set(store)
        try:
            yield
        except Exception as exc:
            # Re-raised below, outside the task group, so that it is not
            # wrapped in an ExceptionGroup.
            error = exc
        finally:
            store.closed = True
            _current_store.reset(token)
            task_group.cancel_scope.cancel()
    if error is not None:
        raise error


class RequestScopeMiddleware:
    """ASGI middleware: every HTTP request runs in its own `request_scope()`.

    WebSocket connections and lifespan events pass through without a scope:
    a connection can live for hours, longer than a cached value stays true.
    """

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with request_scope():
            await self.app(scope, receive, send)


def request_cached(function: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run `function` once per request for each distinct set of arguments."""
    if not inspect.iscoroutinefunction(function):
        raise TypeError(
            f"request_cached needs an async def function; {function.__qualname__} is not one"
        )
    signature = inspect.signature(function)

    @functools.wraps(function)
    async def cached(*args: P.args, **kwargs: P.kwargs) -> T:
        store = _current_store.get()
        if store is None or store.closed:
            ended = " (the request this task started in has ended)" if store else ""
            raise RuntimeError(
                f"{function.__qualname__}() is request_cached and needs a request scope"
                f"{ended}: run the request inside `async with request_scope():` or add "
                "RequestScopeMiddleware to the app"
            )
        key = _cache_key(function, signature, args, kwargs)
        call = store.calls.get(key)
        if call is None:
            call = _Call(_describe(function, args, kwargs))
            logger.debug("miss %s", call.description)
            store.calls[key] = call
            store.task_group.start_soon(_run, store, key, call, function, args, kwargs)
        else:
            state = "" if call.done.is_set() else " (in flight)"
            logger.debug("hit %s%s", call.description, state)
        return await _wait_for(store, key, call)

    return cached


async def _run(
    store: _Store,
    key: Hashable,
    call: _Call,
    function: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Run the call in the scope's task group and publish its outcome."""
    succeeded = False
    try:
        with call.cancel_scope:
            call.value = await function(*args, **kwargs)
            succeeded = True
    except Exception as exc:
        call.error, call.traceback = exc, exc.__traceback__
    finally:
        if not succeeded:
            # Failures and cancellations are not kept: a later call runs again.
            store.forget(key, call)
            if call.error is None:
                call.error = RuntimeError(
                    f"{call.description} was cancelled: its request scope ended"
                )
        call.done.set()


async def _wait_for(store: _Store, key: Hashable, call: _Call) -> Any:
    call.waiters += 1
    try:
        await call.done.wait()
    finally:
        call.waiters -= 1
        if call.waiters == 0 and not call.done.is_set():
            # Every caller gave up: stop the call, and let a later one start afresh.
            call.cancel_scope.cancel()
            store.forget(key, call)
    if call.error is not None:
        raise call.error.with_traceback(call.traceback)
    return call.value


def _cache_key(
    function: Callable[..., Any],
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Hashable:
    """The function and its bound arguments, so f(1) and f(user_id=1) share a key."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{function.__qualname__}(): {exc}") from None
    bound.apply_defaults()
    items = []
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            value = tuple(sorted(value.items()))
        try:
            hash(value)
        except TypeError as exc:
            raise TypeError(
                f"{function.__qualname__}() is request_cached, so its arguments must be "
                f"hashable: argument {name!r} is a {type(value).__name__} ({exc}); "
                "pass a tuple or a frozen dataclass instead"
            ) from None
        items.append((name, value))
    return (function, tuple(items))


def _describe(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [repr(arg) for arg in args] + [f"{name}={value!r}" for name, value in kwargs.items()]
    return f"{function.__name__}({', '.join(shown)})"
