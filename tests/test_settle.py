"""`examples.settle`: every call runs to the end; failures become outcomes.

The property-based tests in test_settle_properties.py cover the same rules
over random mixes of calls; these are the cases a reader can follow one by
one.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import assert_type

import anyio
import pytest

from examples.services import User, fetch_comments, fetch_posts, fetch_user, outage, stall
from examples.settle import Failed, Ok, Outcome, settle, value_or, within
from examples.timeline import Timeline

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python

ROOT = Path(__file__).resolve().parent.parent


async def test_outcomes_come_back_in_call_order() -> None:
    with Timeline() as timeline:
        user, posts, comments = await settle(fetch_user(1), fetch_posts(1), fetch_comments(1))
    assert isinstance(user, Ok) and isinstance(posts, Ok) and isinstance(comments, Ok)
    assert user.value.name == "Ada"
    assert posts.value == ["post 1 by 1", "post 2 by 1"]
    assert timeline.total_ms == 100  # concurrent, not 300


async def test_each_position_keeps_its_type() -> None:
    """`assert_type` is checked by mypy; at run time it only returns its argument."""
    user, posts = await settle(fetch_user(1), fetch_posts(1))
    assert_type(user, Outcome[User])
    assert_type(posts, Outcome[list[str]])
    assert_type(value_or(posts, []), list[str])
    assert isinstance(user, Ok) and isinstance(posts, Ok)


async def test_a_failure_does_not_cancel_the_others() -> None:
    with Timeline() as timeline, outage("posts"):
        user, posts, comments = await settle(fetch_user(1), fetch_posts(1), fetch_comments(1))
    assert isinstance(posts, Failed)
    assert str(posts.error) == "posts: 503 Service Unavailable"
    assert isinstance(user, Ok) and isinstance(comments, Ok)
    assert [span.outcome for span in timeline.spans].count("ok") == 2


async def test_value_or_gives_the_default_for_a_failure() -> None:
    with outage("user"):
        user, posts = await settle(fetch_user(1), fetch_posts(1))
    assert value_or(user, None) is None
    assert value_or(posts, []) == ["post 1 by 1", "post 2 by 1"]


async def test_cancelling_the_caller_cancels_every_call() -> None:
    with Timeline() as timeline, stall("user"):
        with anyio.move_on_after(0.15) as scope:
            await settle(fetch_user(1), fetch_posts(1))
    assert scope.cancelled_caught
    outcomes = {span.label: span.outcome for span in timeline.spans}
    assert outcomes == {"user(1)": "cancelled", "posts(1)": "ok"}
    assert timeline.total_ms == 150


async def test_within_gives_one_call_its_own_deadline() -> None:
    with Timeline() as timeline, stall("posts"):
        user, posts = await settle(fetch_user(1), within(0.2, fetch_posts(1)))
    assert isinstance(user, Ok) and user.value.name == "Ada"
    assert isinstance(posts, Failed) and isinstance(posts.error, TimeoutError)
    assert timeline.total_ms == 200  # the stalled call's deadline, not forever


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_a_call_that_awaited_a_cancelled_future_is_a_failure() -> None:
    """Someone else cancels a future the call waits on: the caller is not cancelled.

    This is what `asyncio.gather(..., return_exceptions=True)` reports too;
    before, AnyIO cancelled the other calls and lost every outcome.
    """
    shared: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def wait_for_shared() -> str:
        return await shared

    async def cancel_shared() -> str:
        await anyio.sleep(0.01)
        shared.cancel()
        return "cancelled it"

    settled = await settle(wait_for_shared(), cancel_shared(), fetch_user(1))
    gathered = await asyncio.gather(
        asyncio.ensure_future(shared), fetch_user(1), return_exceptions=True
    )
    waited, canceller, user = settled
    assert isinstance(waited, Failed) and isinstance(waited.error, asyncio.CancelledError)
    assert isinstance(gathered[0], asyncio.CancelledError)
    assert canceller == Ok("cancelled it")
    assert isinstance(user, Ok) and user.value.name == "Ada"  # ran to its end


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_a_deadline_on_a_shared_task_does_not_cancel_it_for_others() -> None:
    """Request A gives up on a shared task after 20 ms; request B still gets its value.

    Without a shield, A's deadline would cancel the task itself, and B would
    get `Failed(CancelledError())` for a call that nothing was wrong with.
    """
    shared = asyncio.ensure_future(fetch_user(1))  # 100 ms

    async def request_a() -> tuple[Outcome[User]]:
        return await settle(within(0.02, shared))

    async def request_b() -> tuple[Outcome[User]]:
        return await settle(shared)

    (a,), (b,) = await asyncio.gather(request_a(), request_b())
    assert isinstance(a, Failed) and isinstance(a.error, TimeoutError)
    assert isinstance(b, Ok) and b.value.name == "Ada"
    assert not shared.cancelled()


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_cancelling_one_caller_does_not_cancel_a_shared_task() -> None:
    """A's caller is cancelled (say, its client went away): B still gets the value."""
    shared = asyncio.ensure_future(fetch_user(1))  # 100 ms

    async def request_a() -> None:
        with anyio.move_on_after(0.02):
            await settle(shared)

    async def request_b() -> tuple[Outcome[User]]:
        return await settle(shared)

    _, (b,) = await asyncio.gather(request_a(), request_b())
    assert isinstance(b, Ok) and b.value.name == "Ada"
    assert not shared.cancelled()


def test_settle_with_no_calls_settles_nothing() -> None:
    async def main() -> tuple[()]:
        return await settle()

    assert anyio.run(main) == ()


async def test_a_cancelled_anyio_future_is_a_failure() -> None:
    """On Trio too, a shared future cancelled by someone else fails only its waiter."""
    shared: anyio.Future[str] = anyio.Future()

    async def cancel_shared() -> None:
        await anyio.sleep(0.01)
        shared.cancel()

    waited, canceller, posts = await settle(shared, cancel_shared(), fetch_posts(1))
    assert isinstance(waited, Failed) and isinstance(waited.error, anyio.FutureCancelled)
    assert canceller == Ok(None)
    assert isinstance(posts, Ok)


def test_optimized_mode_loses_no_result(tmp_path: Path) -> None:
    """`python -O` strips asserts; settle must not depend on one."""
    script = tmp_path / "shared_future.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            import anyio
            from examples.settle import settle

            async def main() -> None:
                shared = asyncio.get_running_loop().create_future()
                async def cancel_shared() -> str:
                    await anyio.sleep(0)
                    shared.cancel()
                    return "ok"
                async def slow() -> str:
                    await anyio.sleep(0.01)
                    return "slow"
                print(await settle(shared, cancel_shared(), slow()))

            asyncio.run(main())
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-O", str(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "(Failed(error=CancelledError()), Ok(value='ok'), Ok(value='slow'))"
    )


@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_a_keyboard_interrupt_in_a_call_is_raised_bare() -> None:
    """Not an outcome, and not wrapped in a group: `except KeyboardInterrupt` works.

    On asyncio a KeyboardInterrupt in a task may leave the event loop before
    settle() sees it, which would stop this test run; the subprocess test
    below covers asyncio with SystemExit.
    """

    async def interrupted() -> str:
        await anyio.sleep(0.01)
        raise KeyboardInterrupt

    with Timeline() as timeline, pytest.raises(KeyboardInterrupt):
        await settle(interrupted(), fetch_posts(1))
    assert [span.outcome for span in timeline.spans] == ["cancelled"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_system_exit_in_a_call_ends_the_program_with_its_status(
    backend: str, tmp_path: Path
) -> None:
    script = tmp_path / "exits.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import anyio
            from examples.settle import settle

            async def exits() -> str:
                await anyio.sleep(0.01)
                raise SystemExit(3)

            async def slow() -> str:
                await anyio.sleep(0.05)
                return "slow"

            async def main() -> None:
                print(await settle(exits(), slow()))

            anyio.run(main, backend={backend!r})
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert (result.returncode, result.stdout) == (3, ""), result.stderr
    # On asyncio, as with asyncio.gather(), the loop also logs the main task's
    # SystemExit as "never retrieved"; what must not appear is a group.
    assert "ExceptionGroup" not in result.stderr, result.stderr


def test_settle_imports_nothing_from_the_simulation() -> None:
    """Readers copy settle.py: it must run with AnyIO alone."""
    source = (ROOT / "examples" / "settle.py").read_text()
    assert "examples." not in source.replace("examples.settle", "")
    assert source.startswith(
        '# /// script\n# requires-python = ">=3.11"\n# dependencies = ["anyio>=4.15"]\n# ///\n'
    ), "settle.py must start with its PEP 723 block"


def test_value_or_refuses_what_is_not_an_outcome() -> None:
    with pytest.raises(TypeError, match="takes an Ok or a Failed, not dict"):
        value_or({"theme": "dark"}, None)  # type: ignore[arg-type]
