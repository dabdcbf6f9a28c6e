"""Fixtures for tests that talk to real HTTP servers (`examples.serve`).

Registered from tests/conftest.py with `pytest_plugins`. Every test is
checked for a server left running: `serve()` runs Uvicorn in a thread named
after `SERVER_THREAD_PREFIX`, and such a thread still alive after a test
means a server is still listening on 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from examples.serve import SERVER_THREAD_PREFIX


def server_threads() -> list[threading.Thread]:
    """Threads of `examples.serve` servers that are still running."""
    return [t for t in threading.enumerate() if t.name.startswith(SERVER_THREAD_PREFIX)]


def servers_left(before: set[threading.Thread], test: str) -> str | None:
    """What to report if servers started since `before` are still running, else None."""
    left = [thread.name for thread in server_threads() if thread not in before]
    if not left:
        return None
    return (
        f"{test}: the test left {len(left)} server(s) running: {left}. "
        "Start servers with `async with serve(app)`, which stops them when the block ends."
    )


@pytest.fixture(autouse=True)
def no_server_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test that leaves a Uvicorn server running after it ends."""
    before = set(server_threads())
    yield
    problem = servers_left(before, request.node.nodeid)
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture(params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")])
def real_clock_backend(request: pytest.FixtureRequest) -> str:
    """An AnyIO backend on its real clock: real sockets need real time."""
    return str(request.param)
