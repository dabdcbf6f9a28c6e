# /// script
# requires-python = ">=3.11"
# dependencies = ["anyio>=4.15"]
# ///
"""Run each distinct call once per request: a per-request async cache.

Decorate an async function with `@request_cached`, open a request scope at
the request's entry (`async with request_scope():`, or
`RequestScopeMiddleware` around an ASGI app), and every call with the same
arguments inside that request shares one run of the function:

- Calls that come later get the stored value.
- Calls that come while the first one is still running wait for it, so
  three parts of a page asking for the same user at once cause one query.
- Nothing crosses requests: each scope has its own store, dropped at its
  end. Nothing is shared with the browser either: this is server memory.

Choices, each one tested in tests/test_request_cache.py:

- The store lives in a ContextVar. Tasks copy the context when they are
  created, so tasks started inside the request share its store.
- Each call runs in a task of the scope, not in the caller's task, and in
  the context the scope captured when it opened. A cached function reads
  request-level context (set before the scope opened, such as the session
  token), never a part's own: the same on asyncio and Trio.
- A caller that is cancelled stops waiting, and the others still get the
  value. The call is cancelled only when no caller waits for it any more.
- A failure reaches the callers already waiting, each as its own copy
  chained to the original, and is then forgotten: a later call runs again.
  A KeyboardInterrupt or SystemExit in a call reaches them as a
  RuntimeError that names it, and ends the request scope.
- When every caller has given up, the call is cancelled; a later caller
  starts a new run once the cancelled one has ended, so a key never runs
  twice at once in a scope.
- `fn.invalidate(*args)` forgets one entry (after a write in the same
  request), `fn.invalidate_all()` every entry of that function. A call
  still running when it is invalidated ends normally for the callers
  already waiting; a later caller starts a new run once it has ended.
- A cycle of cached calls (a(1) -> b(1) -> a(1)) raises
  `CachedCallCycleError` naming it instead of waiting forever.
- Arguments are the key, with their types: 1, 1.0 and True are different
  keys, also inside tuples, frozensets and dataclass fields (K(1) and
  K(True) are two keys). An unhashable argument raises a TypeError that names it.
- Outside a request scope a cached function raises RuntimeError rather
  than silently running uncached.

Only AnyIO primitives are used, so it works under asyncio and Trio.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, MutableMapping
from contextlib import asynccontextmanager
from contextvars import Context, ContextVar, copy_context
from dataclasses import dataclass, field
from types import MethodType
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

__all__ = [
    "CachedCallCycleError",
    "RequestCached",
    "RequestScopeMiddleware",
    "request_cached",
    "request_scope",
]

P = ParamSpec("P")
T = TypeVar("T")
# A cached function and its typed, bound arguments.
_Key = tuple[Any, ...]
# ASGI's types, spelled as Starlette spells them, so that the middleware fits
# `Middleware(...)` and `app.add_middleware(...)` for a type checker too.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)


class CachedCallCycleError(RuntimeError):
    """Cached calls that wait for each other: none of them could ever end."""


@dataclass(eq=False)
class _Call:
    """One run in flight, shared by everyone who asked for it."""

    description: str  # "get_user(1)", for logs and errors
    done: anyio.Event = field(default_factory=anyio.Event)
    cancel_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    waiters: int = 0
    abandoned: bool = False  # every caller gave up; it is being cancelled
    # Invalidated while running: its waiters still get its outcome, but it
    # is not stored, and the next caller's run starts once it has ended.
    invalidated: bool = False
    cancelled: bool = False
    error: BaseException | None = None
    value: Any = None
    previous: _Call | None = None  # an abandoned or invalidated run of the key
    # The calls this run is waiting for (with a count: a run may wait for
    # one call from several of its tasks). Used to find cycles.
    waiting_for: dict[_Call, int] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class _Finished:
    """A call that succeeded: only its value is kept, not its Event."""

    value: Any


@dataclass(eq=False)
class _Store:
    """The calls made in one request scope."""

    task_group: TaskGroup
    # The request-level context every call runs in, captured at the start.
    context: Context = field(default_factory=copy_context)
    entries: dict[_Key, _Call | _Finished] = field(default_factory=dict)
    # Set when the request ends. A task started during the request that
    # outlives it still sees this store through its copied context.
    closed: bool = False

    def forget(self, key: _Key, call: _Call) -> None:
        if self.entries.get(key) is call:
            del self.entries[key]

    def invalidate(self, key: _Key) -> None:
        entry = self.entries.get(key)
        if isinstance(entry, _Call):
            # Still running: kept, so that the next caller waits for its end.
            entry.invalidated = True
        else:
            self.entries.pop(key, None)


_StoreVar = ContextVar[_Store | None]
_current_store: _StoreVar = ContextVar("request_cache", default=None)
# The cached call whose run the current task belongs to, if any.
_CallVar = ContextVar[_Call | None]
_running_call: _CallVar = ContextVar("request_cache_call", default=None)


@asynccontextmanager
async def request_scope() -> AsyncIterator[None]:
    """Cache `@request_cached` calls made in this block and its tasks.

    Cached functions run in the context as it is here, when the scope
    opens: set request-level context variables before opening it. When the
    block ends, the store is dropped and any call still running is
    cancelled. An `Exception` raised in the block comes out unchanged.
    """
    error: Exception | None = None
    async with anyio.create_task_group() as task_group:
        store = _Store(task_group)
        token = _current_store.set(store)
        store.context = copy_context()
        store.context.run(_running_call.set, None)
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

    WebSocket connections and lifespan events pass through without a
    scope: a connection can live for hours, longer than a cached value
    stays true. A streamed response that lives long should open a scope per
    message it sends (see the 2.5 page).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with request_scope():
            await self.app(scope, receive, send)


class RequestCached(Generic[P, T]):
    """An async function whose calls are shared within a request scope.

    Call it like the function it wraps; `invalidate(*args, **kwargs)`
    forgets the stored value for those arguments in the current scope, and
    `invalidate_all()` forgets every value of this function there. A call
    still running when it is invalidated ends normally for the callers
    already waiting; the next caller starts a new run once it has ended.

    On a method, the instance is one of the arguments: `repo.user(1)` and
    `other_repo.user(1)` are different calls, and the instance must be
    hashable (objects are, by identity, unless they define `__eq__`).
    `invalidate` is then called on the class with the instance first:
    `Repository.user.invalidate(repo, 1)`.
    """

    def __init__(self, function: Callable[P, Awaitable[T]]) -> None:
        if not inspect.iscoroutinefunction(function):
            name = function.__qualname__
            needs = "request_cached needs an async def function"
            raise TypeError(f"{needs}; {name} is not one")
        self.function = function
        self.signature = inspect.signature(function)
        functools.update_wrapper(self, function)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> RequestCached[P, T]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any]) -> Callable[..., Awaitable[T]]: ...
    def __get__(
        self, instance: object | None, owner: type[Any]
    ) -> RequestCached[P, T] | Callable[..., Awaitable[T]]:
        # Looked up on an instance, bind it like a function would be bound.
        return self if instance is None else MethodType(self, instance)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        store = self._store()
        key = self._key(args, kwargs)
        entry = store.entries.get(key)
        description = _describe(self.function, args, kwargs)
        if isinstance(entry, _Finished):
            logger.debug("hit %s", description)
            return cast(T, entry.value)  # stored by this function's own run
        if isinstance(entry, _Call) and (entry.abandoned or entry.invalidated):
            # Every caller of that run gave up and it is being cancelled, or
            # it was invalidated: the new run starts once the old one has
            # ended, so that one key never runs twice at once.
            entry = _Call(description, previous=entry)
            logger.debug("miss %s (restarted)", description)
            store.entries[key] = entry
            _start(store, key, entry, self.function, args, kwargs)
        elif entry is None:
            entry = _Call(description)
            logger.debug("miss %s", description)
            store.entries[key] = entry
            _start(store, key, entry, self.function, args, kwargs)
        else:
            logger.debug("hit %s (in flight)", description)
        return cast(T, await _wait_for(store, key, entry))

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Forget the value for these arguments in the current scope."""
        store = self._store()
        store.invalidate(self._key(args, kwargs))

    def invalidate_all(self) -> None:
        """Forget every value of this function in the current scope."""
        store = self._store()
        for key in [key for key in store.entries if key[0] is self.function]:
            store.invalidate(key)

    def _store(self) -> _Store:
        store = _current_store.get()
        if store is None or store.closed:
            ended = " (the request this task started in has ended)"
            raise RuntimeError(
                f"{self.function.__qualname__}() is request_cached and needs "
                f"a request scope{ended if store else ''}: run the request "
                "inside `async with request_scope():` or add "
                "RequestScopeMiddleware to the app"
            )
        return store

    def _key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Key:
        return _cache_key(self.function, self.signature, args, kwargs)


def request_cached(function: Callable[P, Awaitable[T]]) -> RequestCached[P, T]:
    """Run `function` once per request for each distinct set of arguments."""
    return RequestCached(function)


def _start(
    store: _Store,
    key: _Key,
    call: _Call,
    function: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Start the call in the scope's task group.

    Started from the scope's context, so the run reads the same context
    whichever caller came first, on every backend.
    """
    run = store.task_group.start_soon
    store.context.run(run, _run, store, key, call, function, args, kwargs)


async def _run(
    store: _Store,
    key: _Key,
    call: _Call,
    function: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Run the call in the scope's task group and publish its outcome."""
    _running_call.set(call)  # this task's own copy of the scope's context
    try:
        with call.cancel_scope:
            if call.previous is not None:
                await call.previous.done.wait()  # at most one run at a time
                call.previous = None
            call.value = await function(*args, **kwargs)
        if call.cancel_scope.cancelled_caught:
            call.error = _cancelled(call, store)
    except anyio.get_cancelled_exc_class() as exc:
        if anyio.current_effective_deadline() == -math.inf:
            # This task is cancelled: the scope ended, or an outer deadline.
            call.error = _cancelled(call, store)
            raise
        # The function let out a cancellation that was not aimed at it (it
        # awaited a task someone else cancelled). Re-raising it would cancel
        # the whole request scope, so it is this call's failure instead.
        raised = f"{call.description} raised {_name(exc)}"
        call.error = RuntimeError(f"{raised} without being cancelled")
        call.error.__cause__ = exc
    except Exception as exc:
        call.error = exc
    except BaseException as exc:
        # KeyboardInterrupt, SystemExit: say so to the waiters, and let it
        # end the request scope as it should.
        stopped = f"{call.description} was stopped by {_name(exc)}"
        call.error = RuntimeError(stopped)
        call.error.__cause__ = exc
        raise
    finally:
        if call.error is None and not call.invalidated:
            # Keep only the value: the Event and the CancelScope go.
            if store.entries.get(key) is call:
                store.entries[key] = _Finished(call.value)
        else:
            # Failures, cancellations and invalidated values are not kept: a
            # later call runs again.
            store.forget(key, call)
        call.done.set()


def _cancelled(call: _Call, store: _Store) -> RuntimeError:
    call.cancelled = True
    reason = ": its request scope ended" if store.closed else ""
    return RuntimeError(f"{call.description} was cancelled{reason}")


async def _wait_for(store: _Store, key: _Key, call: _Call) -> Any:
    waiter = _running_call.get()
    if waiter is not None:
        cycle = _cycle(waiter, call)
        if cycle:
            names = " -> ".join(each.description for each in cycle)
            message = f"cycle of cached calls: {names}"
            raise CachedCallCycleError(message)
        waiter.waiting_for[call] = waiter.waiting_for.get(call, 0) + 1
    call.waiters += 1
    try:
        await call.done.wait()
    finally:
        call.waiters -= 1
        if waiter is not None:
            waiter.waiting_for[call] -= 1
            if not waiter.waiting_for[call]:
                del waiter.waiting_for[call]
        if call.waiters == 0 and not call.done.is_set():
            # Every caller gave up: stop the call; a later one starts afresh
            # (after this one has ended).
            call.abandoned = True
            call.cancel_scope.cancel()
    if call.error is not None:
        if call.cancelled:
            # If this caller is being cancelled too (the whole request is),
            # it should end as cancelled, not with the call's error.
            await anyio.lowlevel.checkpoint_if_cancelled()
        raise _own_copy(call.error) from call.error
    return call.value


def _cycle(waiter: _Call, call: _Call) -> list[_Call]:
    """`call, ..., waiter, call` if `call` already waits for `waiter`."""
    path = [call]
    seen: set[_Call] = set()

    def reaches_waiter(node: _Call) -> bool:
        if node is waiter:
            return True
        if node in seen:
            return False
        seen.add(node)
        for next_call in node.waiting_for:
            path.append(next_call)
            if reaches_waiter(next_call):
                return True
            path.pop()
        return False

    return [*path, call] if reaches_waiter(call) else []


def _own_copy(error: BaseException) -> BaseException:
    """A copy of `error` for one waiter, or `error` if it does not copy.

    Each waiter raises its own object, so one waiter's traceback and
    notes do not pile up on another's. An exception whose constructor does
    not take its own `args` back cannot be copied faithfully; then every
    waiter gets the original.
    """
    try:
        duplicate = copy.copy(error)
    except Exception:
        return error
    if type(duplicate) is not type(error) or str(duplicate) != str(error):
        return error
    notes = getattr(error, "__notes__", None)
    if isinstance(notes, list):
        # copy.copy shares the list: a note one waiter adds would reach all.
        duplicate.__notes__ = list(notes)
    return duplicate


def _cache_key(
    function: Callable[..., Any],
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> _Key:
    """The function and its bound arguments, each with its type.

    f(1) and f(user_id=1) share a key; f(1), f(1.0) and f(True) do not,
    nor do two NamedTuple types with equal fields, nor K(1) and K(True)
    for a frozen dataclass K.
    """
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{function.__qualname__}(): {exc}") from None
    bound.apply_defaults()
    items = []
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            value = tuple(sorted(value.items()))
        try:
            hash(value)
        except TypeError as exc:
            raise TypeError(
                f"{function.__qualname__}() is request_cached, so its "
                f"arguments must be hashable: argument {name!r} is a "
                f"{type(value).__name__} ({exc}); pass a tuple or a frozen "
                "dataclass instead"
            ) from None
        items.append((name, _typed(value)))
    return (function, tuple(items))


def _typed(value: Any) -> Hashable:
    """`value` with its type, inside tuples, frozensets and dataclasses too."""
    if isinstance(value, tuple):
        return (type(value), tuple(_typed(item) for item in value))
    if isinstance(value, frozenset):
        return (frozenset, frozenset(_typed(item) for item in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # The instance keeps its own equality (and identity, for eq=False);
        # its hashed fields add their types: K(1) and K(True) are equal.
        hashed = [
            _typed(getattr(value, each.name))
            for each in dataclasses.fields(value)
            if (each.compare if each.hash is None else each.hash)
        ]
        return (type(value), value, tuple(hashed))
    return (type(value), value)


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _describe(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> str:
    shown = [repr(arg) for arg in args]
    shown += [f"{name}={value!r}" for name, value in kwargs.items()]
    return f"{function.__name__}({', '.join(shown)})"
