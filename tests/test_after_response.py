"""`examples.after_response`: failures logged with context, drain and cancel at shutdown."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from examples.after_response import AfterResponse, Job

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def now_ms(started: float) -> int:
    return round((anyio.current_time() - started) * 1000)


async def test_start_returns_at_once_and_the_job_runs_after() -> None:
    ended: list[int] = []
    started = anyio.current_time()

    async def audit(user_id: int) -> None:
        await anyio.sleep(0.2)
        ended.append(user_id)

    async with AfterResponse(drain_seconds=1) as after:
        job = after.start(audit, 7, context={"path": "/orders"})
        assert job == Job("audit", {"path": "/orders"})
        assert now_ms(started) == 0  # start() did not wait
        assert after.running == [job]
        assert ended == []
    # Leaving the block drained it: the job ran to its end.
    assert ended == [7]
    assert now_ms(started) == 200
    assert (after.finished, after.failed, after.cancelled, after.running) == (1, 0, [], [])


async def test_a_failure_is_logged_with_the_request_context_and_spares_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ended: list[str] = []

    async def broken() -> None:
        await anyio.sleep(0.05)
        raise ValueError("mail server said no")

    async def slow() -> None:
        await anyio.sleep(0.1)
        ended.append("slow")

    with caplog.at_level(logging.ERROR, logger="after_response"):
        async with AfterResponse(drain_seconds=1) as after:
            after.start(broken, context={"request_id": "r-1", "path": "/orders"})
            after.start(slow, context={"request_id": "r-1"})
    assert ended == ["slow"]  # the failure cancelled nothing
    assert (after.finished, after.failed) == (1, 1)
    [record] = caplog.records
    assert record.getMessage() == (
        "work after the response failed: broken (request_id=r-1, path=/orders)"
    )
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
    assert record.__dict__["job_context"] == {"request_id": "r-1", "path": "/orders"}


async def test_shutdown_cancels_what_outlives_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ended: list[str] = []
    cancelled: list[str] = []

    async def work(name: str, seconds: float) -> None:
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            cancelled.append(name)
            raise
        ended.append(name)

    tasks_before = {task.id for task in anyio.get_running_tasks()}
    started = anyio.current_time()
    with caplog.at_level(logging.WARNING, logger="after_response"):
        async with AfterResponse(drain_seconds=0.3) as after:
            after.start(work, "quick", 0.1, name="quick", context={"request_id": "r-1"})
            after.start(work, "slow", 5.0, name="slow", context={"request_id": "r-2"})
    # The block ended at the deadline, not when the slow job would have.
    assert now_ms(started) == 300
    assert ended == ["quick"]
    assert cancelled == ["slow"]
    assert after.cancelled == [Job("slow", {"request_id": "r-2"})]
    assert after.running == []
    # No task of the runner is left running after the block.
    assert {task.id for task in anyio.get_running_tasks()} == tasks_before
    assert [r.getMessage() for r in caplog.records] == [
        "work after the response cancelled at shutdown: slow (request_id=r-2)"
    ]


async def test_shutdown_with_nothing_running_does_not_wait() -> None:
    started = anyio.current_time()
    async with AfterResponse(drain_seconds=10):
        pass
    assert now_ms(started) == 0


async def test_an_error_in_the_lifespan_cancels_at_once() -> None:
    cancelled: list[str] = []

    async def work() -> None:
        try:
            await anyio.sleep(5)
        except anyio.get_cancelled_exc_class():
            cancelled.append("work")
            raise

    started = anyio.current_time()
    with pytest.raises(KeyError):
        async with AfterResponse(drain_seconds=10) as after:
            after.start(work)
            await anyio.sleep(0.05)
            raise KeyError("startup failed")
    # No drain on an error: the job is cancelled at once and listed.
    assert now_ms(started) == 50
    assert cancelled == ["work"]
    assert after.cancelled == [Job("work")]


async def test_the_caller_cancelled_while_draining_cancels_the_jobs() -> None:
    cancelled: list[str] = []

    async def work() -> None:
        try:
            await anyio.sleep(5)
        except anyio.get_cancelled_exc_class():
            cancelled.append("work")
            raise

    started = anyio.current_time()
    with anyio.move_on_after(0.1):
        async with AfterResponse(drain_seconds=10) as after:
            after.start(work)
    # Cancelled while draining: nothing runs on after the block.
    assert now_ms(started) == 100
    assert cancelled == ["work"]
    assert after.running == []


async def test_start_refuses_before_and_after_the_block() -> None:
    after = AfterResponse(drain_seconds=1)

    async def work() -> None:
        await anyio.lowlevel.checkpoint()

    with pytest.raises(RuntimeError, match="not open"):
        after.start(work)
    async with after:
        after.start(work)
    with pytest.raises(RuntimeError, match="not open"):
        after.start(work)
    assert after.finished == 1


async def test_a_job_sees_the_context_variables_of_the_request_that_started_it() -> None:
    seen: list[str] = []

    async def job() -> None:
        await anyio.sleep(0.01)
        seen.append(REQUEST_ID.get())

    async def handler(after: AfterResponse, request_id: str) -> None:
        REQUEST_ID.set(request_id)
        after.start(job)

    async with AfterResponse(drain_seconds=1) as after:
        # Each "request" runs in its own task, as a server runs it.
        async with anyio.create_task_group() as requests:
            requests.start_soon(handler, after, "r-1")
            requests.start_soon(handler, after, "r-2")
    assert sorted(seen) == ["r-1", "r-2"]


async def test_a_job_is_hashable_and_keeps_a_read_only_copy_of_its_context() -> None:
    context: dict[str, object] = {"request_id": "r-1"}
    async with AfterResponse(drain_seconds=1) as after:
        job = after.start(anyio.lowlevel.checkpoint, context=context)
        context["request_id"] = "r-2"  # the handler reuses its dict
    assert job.context == {"request_id": "r-1"}
    assert hash(job) == hash(Job("checkpoint", {"request_id": "r-1"}))
    writable: Any = job.context  # what a job that tries to change it would do
    with pytest.raises(TypeError):
        writable["request_id"] = "r-3"


async def test_the_runner_opens_once() -> None:
    after = AfterResponse(drain_seconds=1)
    async with after:
        with pytest.raises(RuntimeError, match="opens once"):
            async with after:
                pass
        # The refused second entry left the first one open.
        after.start(anyio.lowlevel.checkpoint)
    with pytest.raises(RuntimeError, match="opens once"):
        async with after:
            pass
    assert after.finished == 1


async def test_a_job_started_by_a_job_while_draining_is_drained_too() -> None:
    ended: list[str] = []

    async def child() -> None:
        await anyio.sleep(0.1)
        ended.append("child")

    async def parent(after: AfterResponse) -> None:
        await anyio.sleep(0.05)
        after.start(child)

    started = anyio.current_time()
    async with AfterResponse(drain_seconds=1) as after:
        after.start(parent, after)
    assert ended == ["child"]
    assert now_ms(started) == 150
    assert (after.finished, after.cancelled) == (2, [])


async def test_a_job_that_shields_itself_holds_the_block_past_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """drain_seconds bounds only jobs that let themselves be cancelled."""
    ended: list[str] = []

    async def stubborn() -> None:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(2)
        ended.append("stubborn")

    started = anyio.current_time()
    with caplog.at_level(logging.WARNING, logger="after_response"):
        async with AfterResponse(drain_seconds=0.5) as after:
            after.start(stubborn)
    # Cancelled (and said so) at the deadline, but it ran to its end at 2 s.
    assert now_ms(started) == 2000
    assert ended == ["stubborn"]
    assert after.cancelled == [Job("stubborn")]
    assert [r.getMessage() for r in caplog.records] == [
        "work after the response cancelled at shutdown: stubborn"
    ]


async def test_many_jobs_all_run_and_none_is_left() -> None:
    ended: list[int] = []

    async def job(number: int) -> None:
        await anyio.sleep(0.01)
        ended.append(number)

    started = anyio.current_time()
    async with AfterResponse(drain_seconds=1) as after:
        for number in range(5000):
            after.start(job, number)
    # No bound: they all ran at once.
    assert now_ms(started) == 10
    assert sorted(ended) == list(range(5000))
    assert (after.finished, after.running) == (5000, [])


async def test_a_job_that_raises_system_exit_ends_the_runner_and_its_block(
    anyio_backend: tuple[str, dict[str, object]],
) -> None:
    """Only `Exception` is caught: SystemExit and KeyboardInterrupt go through.

    On asyncio they leave the event loop itself from the task that raised
    (asyncio re-raises them out of `run()`), which would end this test run
    too, so this runs on Trio, where they travel through the task group.
    """
    if anyio_backend[0] != "trio":
        pytest.skip("on asyncio SystemExit in a task stops the event loop itself")
    body_ended: list[str] = []

    async def exits() -> None:
        await anyio.sleep(0.05)
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        async with AfterResponse(drain_seconds=5) as after:
            after.start(exits)
            after.start(anyio.sleep, 5)
            await anyio.sleep(1)
            body_ended.append("body")
    assert body_ended == []  # the lifespan's body was cancelled with it
    # The other job was cancelled with it (whether it is also listed in
    # `cancelled` depends on which task Trio runs first), and none is left.
    assert (after.finished, after.failed, after.running) == (0, 0, [])


async def test_start_from_a_worker_thread_starts_the_job_on_the_event_loop() -> None:
    """A framework runs a plain `def` endpoint in a worker thread."""
    ended: list[str] = []

    async def audit(path: str) -> None:
        await anyio.sleep(0.01)
        ended.append(path)

    def sync_endpoint(after: AfterResponse) -> Job:
        return after.start(audit, "/sync", context={"path": "/sync"})

    async with AfterResponse(drain_seconds=1) as after:
        job = await anyio.to_thread.run_sync(sync_endpoint, after)
    assert job == Job("audit", {"path": "/sync"})
    assert ended == ["/sync"]
    assert (after.finished, after.cancelled) == (1, [])


async def test_start_from_a_worker_thread_after_shutdown_is_refused() -> None:
    async with AfterResponse(drain_seconds=1) as after:
        pass
    with pytest.raises(RuntimeError, match="not open"):
        await anyio.to_thread.run_sync(after.start, anyio.lowlevel.checkpoint)
