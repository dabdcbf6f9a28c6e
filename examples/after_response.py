# /// script
# requires-python = ">=3.11"
# dependencies = ["anyio>=4.15"]
# ///
"""Run work after the response in a task group the application owns.

A request handler that has side effects the response does not depend on (an
audit record, an analytics event, an e-mail) can hand them to an
`AfterResponse` and reply at once. The runner is opened once, in the
application's lifespan, so its tasks outlive the request that started them
and end with the application:

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, AfterResponse]]:
        async with AfterResponse(drain_seconds=5) as after:
            yield {"after": after}

    async def order(request: Request) -> JSONResponse:
        after: AfterResponse = request.state.after
        after.start(send_receipt, 42, context={"path": request.url.path})
        return JSONResponse({"order": 42})

What it guarantees:

- **A failure is logged with the request's context**, once, on the logger
  you give it (`logging.getLogger("after_response")` by default), and never
  reaches the response or the other jobs. Python's own fire-and-forget,
  `asyncio.create_task()` with no one awaiting it, reports a failure only
  when the task is garbage collected ("Task exception was never retrieved"),
  without the request it came from.
- **Shutdown drains within a deadline.** When the lifespan ends, the runner
  waits up to `drain_seconds` for the jobs still running, then cancels the
  rest, logs each one it cancelled, and lists them in `cancelled`. A job is
  never left running after the `async with` block.
- **Nothing starts after shutdown.** `start()` raises `RuntimeError` once
  the runner has closed, and a runner opens once.

What it does not do:

- **It cannot stop a job that refuses to be cancelled.** A job that shields
  itself (`anyio.CancelScope(shield=True)`) or catches the cancellation and
  goes on keeps the `async with` block open until it ends, past the
  deadline: `drain_seconds` bounds only jobs that let themselves be
  cancelled.
- **It catches `Exception`, not `BaseException`.** `KeyboardInterrupt` or
  `SystemExit` raised in a job ends the runner and the application, as it
  would anywhere else.
- **It has no bound.** Every `start()` starts a task at once; a burst of
  requests starts as many jobs, all calling their service together. Bound
  them where they call it, with one shared `anyio.CapacityLimiter`, or hand
  them to a queue.

It runs on any AnyIO backend, asyncio or Trio. The work runs in the same
process: a crash, a kill or a deploy that outlasts the deadline loses it.
Work that must happen belongs in a durable queue with its own workers, not
here.

The helper imports nothing from the simulated services: copy it as it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Self, TypeVarTuple, Unpack

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.abc import TaskGroup

__all__ = ["AfterResponse", "Job"]

Args = TypeVarTuple("Args")


@dataclass(frozen=True)
class Job:
    """One piece of work handed to the runner, with the context of the request that started it."""

    name: str
    # Read-only, and left out of the hash: a job stays hashable, like any frozen dataclass.
    context: Mapping[str, object] = field(default_factory=dict, hash=False)

    def describe(self) -> str:
        """`name (key=value, ...)`: how a log line names the job."""
        details = ", ".join(f"{key}={value}" for key, value in self.context.items())
        return f"{self.name} ({details})" if details else self.name


class AfterResponse:
    """A task group for work after the response, drained at shutdown within a deadline.

    Use it as an async context manager in the application's lifespan, and
    call `start()` from request handlers. Counters tell what happened:
    `finished` jobs ended normally, `failed` ones raised (and were logged),
    and `cancelled` lists the jobs still running at the deadline.
    """

    def __init__(self, *, drain_seconds: float, logger: logging.Logger | None = None) -> None:
        """`drain_seconds`: how long shutdown waits for running jobs before cancelling them."""
        self.drain_seconds = drain_seconds
        self.logger = logger or logging.getLogger("after_response")
        self.finished = 0
        self.failed = 0
        self.cancelled: list[Job] = []
        self._running: dict[int, Job] = {}
        self._next_id = 0
        self._idle = anyio.Event()
        self._task_group: TaskGroup | None = None
        self._opened = False
        self._loop_token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None
        self._exit_stack = AsyncExitStack()

    @property
    def running(self) -> list[Job]:
        """The jobs started and not yet ended, oldest first."""
        return list(self._running.values())

    def start(
        self,
        func: Callable[[Unpack[Args]], Awaitable[object]],
        *args: *Args,
        context: Mapping[str, object] | None = None,
        name: str | None = None,
    ) -> Job:
        """Run `func(*args)` in the runner's task group; return at once.

        `context` says which request started the job (a request id, the
        path, the user): it is logged if the job fails or is cancelled.
        `name` defaults to the function's name. The job keeps a read-only
        copy of `context` (a shallow one: pass plain values, not objects the
        request goes on changing). It may be called from a worker thread too
        (a framework runs a plain `def` endpoint in one): the job is then
        started on the event loop's thread. Raises `RuntimeError` when the
        runner is not open (before `async with`, or after shutdown).
        """
        if self._task_group is None or self._loop_token is None:
            raise RuntimeError("AfterResponse is not open: start() needs `async with` around it")
        if threading.get_ident() != self._loop_thread:
            # A task group is not thread-safe: start the job from the loop's thread.
            return anyio.from_thread.run_sync(
                lambda: self.start(func, *args, context=context, name=name),
                token=self._loop_token,
            )
        job_name = name if name is not None else str(getattr(func, "__name__", func))
        job = Job(job_name, MappingProxyType(dict(context or {})))
        job_id = self._next_id
        self._next_id += 1
        self._task_group.start_soon(self._run, job_id, job, func, *args, name=job.name)
        # Listed once it is started (it runs at the next checkpoint, after this).
        self._running[job_id] = job
        return job

    async def _run(
        self,
        job_id: int,
        job: Job,
        func: Callable[[Unpack[Args]], Awaitable[object]],
        *args: *Args,
    ) -> None:
        try:
            await func(*args)
        except Exception:
            # Logged here, with the request's context, and kept from the task
            # group: one job's failure must not cancel the others.
            self.failed += 1
            self.logger.exception(
                "work after the response failed: %s",
                job.describe(),
                extra={"job": job.name, "job_context": dict(job.context)},
            )
        else:
            self.finished += 1
        finally:
            del self._running[job_id]
            if not self._running:
                self._idle.set()
                self._idle = anyio.Event()

    async def __aenter__(self) -> Self:
        if self._opened:
            # Entered twice, the inner block's exit would close the runner
            # under the outer one, and the counters would mix two lifetimes.
            raise RuntimeError("AfterResponse opens once: make a new one for each lifespan")
        self._opened = True
        await self._exit_stack.enter_async_context(self._lifetime())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await self._exit_stack.__aexit__(exc_type, exc, traceback)

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        """The task group, opened and closed in one generator, as AnyIO and Trio require."""
        try:
            async with anyio.create_task_group() as task_group:
                self._loop_token = anyio.lowlevel.current_token()
                self._loop_thread = threading.get_ident()
                self._task_group = task_group
                try:
                    yield
                    # Normal shutdown: give the running jobs until the deadline.
                    with anyio.move_on_after(self.drain_seconds):
                        while self._running:
                            await self._idle.wait()
                finally:
                    # Whatever still runs now (the deadline passed, the lifespan
                    # failed, or the caller was cancelled) is cancelled, and said so.
                    self._task_group = None  # refuse new work from here on
                    self._cancel_running(task_group)
        except BaseExceptionGroup as group:
            # Jobs never raise (their failures are logged), so the group holds
            # what the lifespan raised: give the caller that error itself.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    def _cancel_running(self, task_group: TaskGroup) -> None:
        self.cancelled = self.running
        for job in self.cancelled:
            self.logger.warning(
                "work after the response cancelled at shutdown: %s",
                job.describe(),
                extra={"job": job.name, "job_context": dict(job.context)},
            )
        task_group.cancel_scope.cancel()
