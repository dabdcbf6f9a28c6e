"""The real-stack lane's PostgreSQL: one server per test session, always stopped.

`postgres_server` starts the server of `examples/postgres.py` once per
session and stops it when the session ends, whether the tests passed,
failed or were interrupted (Ctrl-C, or SIGTERM from a CI runner's timeout,
which this turns into an interruption so that the finalizer still runs).
The helper's own `atexit` hook is the last line of defence.

Blocks in docs/ that use `examples.postgres` get the server through an
autouse fixture, so a session that runs none of them starts nothing. If the
server cannot start, the error says why and the test fails: it never skips.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import types
from collections.abc import Iterator

import pytest

from examples import postgres

# Signals a CI runner or a terminal sends to stop a run.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)

# Imported here, before any block runs: loading a driver costs tens of
# milliseconds, which inside a block's event loop would read as a blocking call.
DRIVER_MODULES = ("asyncpg", "sqlalchemy.ext.asyncio", "sqlalchemy.dialects.postgresql.asyncpg")


@contextlib.contextmanager
def _interrupted_by_stop_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt, so finalizers run."""

    def interrupt(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    previous = {number: signal.signal(number, interrupt) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    """The session's PostgreSQL, started on first use and stopped at the end."""
    with _interrupted_by_stop_signals():
        for module in DRIVER_MODULES:
            importlib.import_module(module)
        server = postgres.start_server()  # raises PostgresStartError with the reason
        try:
            yield server
        finally:
            postgres.stop_server()


def _uses_postgres(item: pytest.Item) -> bool:
    """A docs block (tests/test_docs.py) whose program uses examples.postgres."""
    callspec = getattr(item, "callspec", None)
    example = callspec.params.get("example") if callspec is not None else None
    return example is not None and "examples.postgres" in getattr(example, "source", "")


@pytest.fixture(autouse=True)
def _postgres_for_blocks(request: pytest.FixtureRequest) -> None:
    """Start the session's server before the first block that needs it."""
    if _uses_postgres(request.node):
        request.getfixturevalue("postgres_server")
