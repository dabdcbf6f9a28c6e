# /// script
# requires-python = ">=3.11"
# dependencies = ["anyio>=4.15"]
# ///
"""Share a slow lookup across requests: a TTL cache with single flight.

For data that is the same for every caller (a product, a price list, the
site's configuration), keep the value for `ttl` seconds and let every
request in that time use it. Open the cache once, where the application
starts (`async with cache:` in its lifespan), then in any request:

    product = await cache.get(product_id, lambda: db.get_product(product_id))

- A fresh value is returned at once: no query.
- A miss starts one load; every caller that asks for the same key while it
  runs waits for that load (single flight), so 50 concurrent requests for
  one hot key cause one query, not 50 (the cache stampede).
- `invalidate(key)` forgets the value after a write. A load already running
  for that key may have read the old data: its callers still get what it
  read, but it is not stored, and the next caller starts a new load.

Choices, each one tested in tests/test_shared_cache.py:

- Time is the event loop's clock (`anyio.current_time()`), so a virtual
  clock in tests makes expiry exact; `time.monotonic()` would go on at the
  speed of real time there. On Trio the loop's clock is not
  `time.monotonic()` even in production (it adds a random offset), so the
  two are never mixed.
- A value expires `ttl` seconds after its load ended.
- A load runs in the cache's own task group, not in the first caller's
  task, and in the context captured when the cache was opened: it cannot
  read one request's context variables (its user, its session).
- A caller that is cancelled stops waiting; the load goes on for the
  others. When the last caller leaves, the load still finishes and its
  value is stored for the next request; `fill_timeout` bounds it, so a load
  that hangs frees its key.
- A failure reaches every caller waiting for that load, each as its own
  shallow copy chained to the original (an error that cannot be copied is
  raised as is). It is kept for `error_ttl` seconds (0 by default: not
  kept, the next caller tries again). A cancellation raised inside a load,
  not by the cache closing, fails that load with `RuntimeError`.
- At most `max_entries` values are kept; the least recently used goes first.
- Closing the cache (the app's shutdown) cancels the loads still running
  and waits for them to end; their callers get `CacheClosedError`.
- The key is the caller's to choose, and must hold everything the value
  depends on. Never cache per-user data under a key without the user: the
  next user would be served it. Keys compare as dict keys do: 1, 1.0 and
  True are one key.

Only AnyIO primitives are used, so it works under asyncio and Trio.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from contextvars import Context, copy_context
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, Self, TypeVar, cast

import anyio
from anyio.abc import TaskGroup

__all__ = ["CacheClosedError", "SharedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

logger = logging.getLogger(__name__)


class CacheClosedError(RuntimeError):
    """The cache is not open: it was never entered, or it has been closed."""


@dataclass(eq=False)
class _Fill(Generic[V]):
    """One load in flight, shared by every caller that asks for its key."""

    done: anyio.Event = field(default_factory=anyio.Event)
    value: V | None = None
    error: BaseException | None = None
    traceback: TracebackType | None = None  # the error's, as the load left it


@dataclass(eq=False, slots=True)
class _Stored(Generic[V]):
    """A finished load: its value (or its error) and when it expires."""

    value: V | None
    error: BaseException | None
    traceback: TracebackType | None
    expires_at: float  # on the event loop's clock


class SharedCache(Generic[K, V]):
    """A process-wide TTL cache whose misses share one load per key.

    Create it at import time or in the app's setup, enter it where the app
    starts (`async with cache:`), and call `get(key, load)` from any task
    while it is open. Everything runs on one event loop.
    """

    def __init__(
        self,
        *,
        ttl: float,
        max_entries: int = 1000,
        error_ttl: float = 0.0,
        fill_timeout: float = 30.0,
    ) -> None:
        """Keep values `ttl` seconds, errors `error_ttl` seconds, at most `max_entries`.

        A load that takes longer than `fill_timeout` seconds is cancelled and
        its callers get `TimeoutError`.
        """
        if ttl <= 0 or error_ttl < 0 or max_entries < 1 or fill_timeout <= 0:
            raise ValueError("ttl and fill_timeout must be > 0, error_ttl >= 0, max_entries >= 1")
        self.ttl = ttl
        self.error_ttl = error_ttl
        self.max_entries = max_entries
        self.fill_timeout = fill_timeout
        self.loads = 0  # how many loads were started: a miss each
        self._stored: OrderedDict[K, _Stored[V]] = OrderedDict()
        self._fills: dict[K, _Fill[V]] = {}
        self._task_group: TaskGroup | None = None
        self._context: Context | None = None

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError("this SharedCache is already open")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        # Loads run in this context, never in a caller's: a load serves
        # every request, so it must not see one request's variables.
        self._context = copy_context()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        """Cancel the loads still running and forget every value."""
        task_group, self._task_group = self._task_group, None
        assert task_group is not None, "__aexit__ without __aenter__"
        task_group.cancel_scope.cancel()
        try:
            return await task_group.__aexit__(exc_type, exc, traceback)
        finally:
            self._stored.clear()
            self._fills.clear()

    def __len__(self) -> int:
        """How many values (or kept errors) are stored, expired ones included."""
        return len(self._stored)

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The value for `key`: stored if fresh, else from one shared `load()`.

        `load` is called only on a miss, and at most once at a time per key
        (an invalidation aside). A caller cancelled while it waits stops
        waiting; the load goes on for the others.
        """
        if self._task_group is None or self._context is None:
            raise CacheClosedError(
                "open the SharedCache with `async with cache:` (in the app's lifespan) "
                "before calling get()"
            )
        stored = self._stored.get(key)
        if stored is not None:
            if anyio.current_time() < stored.expires_at:
                self._stored.move_to_end(key)  # recently used: evicted last
                logger.debug("hit %r", key)
                return _outcome(stored.value, stored.error, stored.traceback)
            del self._stored[key]
        fill = self._fills.get(key)
        if fill is None:
            logger.debug("miss %r", key)
            fill = _Fill()
            self._fills[key] = fill
            self.loads += 1
            self._context.run(self._task_group.start_soon, self._fill, key, fill, load)
        else:
            logger.debug("hit %r (in flight)", key)
        await fill.done.wait()
        return _outcome(fill.value, fill.error, fill.traceback)

    def invalidate(self, key: K) -> None:
        """Forget `key`'s value; a load in flight for it will not be stored.

        Call it right after the write that changed the data. Callers already
        waiting for that load still get what it read; the next caller starts
        a new load, which reads the data as it is after the write.
        """
        self._stored.pop(key, None)
        self._fills.pop(key, None)  # detached: it can no longer store its value

    def invalidate_all(self) -> None:
        """Forget every value; no load in flight will be stored."""
        self._stored.clear()
        self._fills.clear()

    async def _fill(self, key: K, fill: _Fill[V], load: Callable[[], Awaitable[V]]) -> None:
        """Run one load in the cache's task group, then publish and store its outcome."""
        try:
            with anyio.fail_after(self.fill_timeout):
                fill.value = await load()
        except Exception as exc:  # TimeoutError from fail_after included
            fill.error = exc
        except BaseException as exc:
            if (
                isinstance(exc, anyio.get_cancelled_exc_class())
                and anyio.current_effective_deadline() != -math.inf
            ):
                # Nothing cancelled this task: the load raised a cancellation of
                # its own (on asyncio, awaiting a future another task cancelled).
                # Re-raised, it would make the task group cancel every load and
                # the task that opened the cache. It fails this load only.
                fill.error = RuntimeError(f"the load for {key!r} raised a cancellation")
                fill.error.__cause__ = exc
            else:
                # The cache is closing (its task group is cancelled), or the
                # process is stopping: tell the waiters, then let it propagate.
                fill.error = CacheClosedError(f"the SharedCache closed while loading {key!r}")
                fill.error.__cause__ = exc
                raise
        finally:
            fill.traceback = None if fill.error is None else fill.error.__traceback__
            # Stored only if no invalidate() came while it ran: the key's
            # current fill is still this one (its generation).
            if self._fills.get(key) is fill:
                del self._fills[key]
                self._store(key, fill)
            fill.done.set()

    def _store(self, key: K, fill: _Fill[V]) -> None:
        if isinstance(fill.error, CacheClosedError):
            return
        keep_for = self.ttl if fill.error is None else self.error_ttl
        if keep_for <= 0:
            return
        expires_at = anyio.current_time() + keep_for
        self._stored[key] = _Stored(fill.value, fill.error, fill.traceback, expires_at)
        self._stored.move_to_end(key)
        while len(self._stored) > self.max_entries:
            evicted, _ = self._stored.popitem(last=False)
            logger.debug("evicted %r", evicted)


def _outcome(value: V | None, error: BaseException | None, traceback: TracebackType | None) -> V:
    if error is not None:
        duplicate = _own_copy(error)
        if duplicate is error:
            # It could not be copied: every caller raises the one object, its
            # traceback reset each time to the load's, so it does not grow.
            raise error.with_traceback(traceback)
        raise duplicate from error
    return cast(V, value)  # None only when the load returned None: V allows it


def _own_copy(error: BaseException) -> BaseException:
    """A shallow copy of `error` for one caller, or `error` itself if it does not copy.

    Each caller raises its own object, so one caller's traceback and notes
    do not pile up on another's. `copy.copy` rebuilds an exception by calling
    its class with `args`, which fails for a class whose `__init__` takes
    other arguments (httpx's `HTTPStatusError(message, request=, response=)`);
    the second way skips `__init__` and copies the attributes.
    """
    for duplicate_of in (copy.copy, _copy_without_init):
        try:
            duplicate = duplicate_of(error)
        except Exception:
            continue
        if type(duplicate) is type(error) and str(duplicate) == str(error):
            notes = getattr(error, "__notes__", None)
            if isinstance(notes, list):
                duplicate.__notes__ = list(notes)  # a shallow copy shares the list
            return duplicate
    return error


def _copy_without_init(error: BaseException) -> BaseException:
    duplicate = type(error).__new__(type(error), *error.args)
    duplicate.__dict__.update(vars(error))
    return duplicate
