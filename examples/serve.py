"""Run an ASGI app under a real Uvicorn server on 127.0.0.1, for as long as a block.

    async with serve(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            response = await client.get("/dashboard")

`serve()` binds an ephemeral port (``port=0``: the operating system picks a
free one), reads the port it got from the listening socket, and yields
``http://127.0.0.1:PORT`` once the server accepts connections. On the way
out, normally, on an error or on cancellation, it asks the server to stop,
waits until it has closed its socket and its connections, and only then
returns: nothing is left listening and the server's thread has ended.

**Why the server runs in a thread with its own event loop.** A client and a
server in production are two processes with two event loops. Serving the app
on the client's own loop would let the two take turns on one ready queue: a
response's timing would include the client's callbacks and the other way
round, and a call that blocks the app would also freeze the clock the client
reads. In its own thread, Uvicorn runs on its own event loop, started the
way `uvicorn.run()` starts it, and the client's loop only waits on the
socket. (Both still share one interpreter, so CPU-bound work competes for
the GIL; the examples that use this helper spend their time waiting, which
is what they measure.)
It also lets the client run on any backend AnyIO supports, Trio included,
while Uvicorn itself is asyncio only.

The helper imports nothing from the simulated services: copy it as it is.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import uvicorn
from starlette.types import ASGIApp

__all__ = ["SERVER_THREAD_PREFIX", "ServerFailedToStart", "serve"]

HOST = "127.0.0.1"
# Each server's thread is named with this prefix, so a test can find one left running.
SERVER_THREAD_PREFIX = "uvicorn on 127.0.0.1"
# How long a stopping server waits for requests still in flight before it
# cancels them. Long enough for a response to finish, short enough that a
# request stuck forever cannot keep the program from ending.
GRACEFUL_SHUTDOWN_SECONDS = 5


class ServerFailedToStart(RuntimeError):
    """Uvicorn stopped before it accepted connections (see its log for why)."""


class _Server(uvicorn.Server):
    """A Uvicorn server that reports, through a callback, that it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()


@asynccontextmanager
async def serve(app: ASGIApp, *, log_level: str = "warning") -> AsyncIterator[str]:
    """Serve `app` with Uvicorn on 127.0.0.1 and a free port; yield its base URL.

    The server runs in its own thread, on its own event loop (see the
    module docstring for why). It is stopped when the block ends, however it
    ends, and `serve()` returns only when the server's thread has finished.
    Raises `ServerFailedToStart` if Uvicorn stops before accepting
    connections (the app's lifespan startup failed, for example).

    `log_level` is Uvicorn's: the default keeps its start and stop messages
    out of the program's output but still logs errors, such as an exception
    in the app. Uvicorn's own logging configuration (its handlers and
    formats) is not installed, so the root logger and the program's own
    handlers are left as they were. Uvicorn's loggers are changed, though,
    for the whole process and after the block too (`Config.configure_logging`
    in uvicorn/config.py): `uvicorn.error`, `uvicorn.access` and
    `uvicorn.asgi` get `log_level` as their level, and `uvicorn.access`
    loses its handlers and stops propagating, since the access log is off.
    """
    config = uvicorn.Config(
        app,
        host=HOST,
        port=0,
        log_config=None,
        log_level=log_level,
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    # The server's thread reports back on this (the caller's) event loop.
    token = anyio.lowlevel.current_token()
    started = anyio.Event()
    finished = anyio.Event()
    failure: list[BaseException] = []

    def report(event: anyio.Event) -> None:
        anyio.from_thread.run_sync(event.set, token=token)

    server = _Server(config, on_started=lambda: report(started))

    def run_server() -> None:
        try:
            # Uvicorn's own runner, on the event loop it would pick in production
            # (uvloop when it is installed, asyncio otherwise).
            server.run()
        except BaseException as exc:  # SystemExit on a failed startup, too
            failure.append(exc)
        finally:
            report(started)  # wakes the caller if it is still waiting to start
            report(finished)

    thread = threading.Thread(
        target=run_server, name=f"{SERVER_THREAD_PREFIX} for {app!r}", daemon=True
    )
    thread.start()
    try:
        await started.wait()
        if not server.started:
            raise ServerFailedToStart(
                f"Uvicorn stopped before accepting connections on {HOST}"
                + (f": {failure[0]!r}" if failure else "")
            ) from (failure[0] if failure else None)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{HOST}:{port}"
    finally:
        # Uvicorn checks this flag every 100 ms, then closes its socket and
        # waits for open connections (at most GRACEFUL_SHUTDOWN_SECONDS).
        server.should_exit = True
        with anyio.CancelScope(shield=True):
            await finished.wait()
            # Reporting `finished` was the thread's last act: join it in a
            # worker thread, so that a thread the OS is slow to schedule
            # cannot block the event loop.
            await anyio.to_thread.run_sync(thread.join)
