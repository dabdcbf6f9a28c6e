"""examples/serve.py and examples/upstream.py on real sockets, on the real clock.

Every server binds 127.0.0.1 on a port the system picks, and must be gone
when `serve()` returns: its thread has ended and its port refuses
connections, whether the block ended normally, raised or was cancelled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from examples import services
from examples.serve import SERVER_THREAD_PREFIX, ServerFailedToStart, serve
from examples.upstream import upstream_app
from tests.http_fixtures import server_threads, servers_left

pytestmark = pytest.mark.anyio
SIGNED_IN = {"Authorization": "Bearer session-ada"}


@pytest.fixture
def anyio_backend(real_clock_backend: str) -> str:
    return real_clock_backend


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", hello)])


def port_of(base_url: str) -> int:
    port = urlsplit(base_url).port
    assert port is not None, base_url
    return port


async def refuses_connections(port: int) -> bool:
    try:
        stream = await anyio.connect_tcp("127.0.0.1", port)
    except OSError:
        return True
    await stream.aclose()
    return False


async def test_serves_on_loopback_then_stops() -> None:
    async with serve(APP) as base_url:
        assert urlsplit(base_url).hostname == "127.0.0.1"
        assert len(server_threads()) == 1
        async with httpx.AsyncClient(base_url=base_url) as client:
            response = await client.get("/")
        assert (response.status_code, response.text) == (200, "hello")
    assert server_threads() == []
    assert await refuses_connections(port_of(base_url))


async def test_two_servers_get_two_ports() -> None:
    async with serve(APP) as first, serve(APP) as second:
        assert port_of(first) != port_of(second)
        assert len(server_threads()) == 2
    assert server_threads() == []


async def test_stops_when_the_block_raises() -> None:
    seen: list[str] = []
    with pytest.raises(LookupError, match="raised inside"):
        async with serve(APP) as base_url:
            seen.append(base_url)
            raise LookupError("raised inside the block")
    assert server_threads() == []
    assert await refuses_connections(port_of(seen[0]))


async def test_stops_when_the_block_is_cancelled() -> None:
    seen: list[str] = []
    with anyio.move_on_after(0.2) as scope:
        async with serve(APP) as base_url:
            seen.append(base_url)
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert server_threads() == []
    assert await refuses_connections(port_of(seen[0]))


async def test_a_failed_startup_raises_and_leaves_nothing() -> None:
    @asynccontextmanager
    async def failing_lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("the database is not there")
        yield

    app = Starlette(lifespan=failing_lifespan)
    with pytest.raises(ServerFailedToStart, match="before accepting connections"):
        async with serve(app):
            pytest.fail("the block must not run when the server did not start")
    assert server_threads() == []


async def test_the_programs_logging_is_kept_and_uvicorns_loggers_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What serve()'s docstring says about logging, process-wide and after the block."""
    root = logging.getLogger()
    handler = logging.NullHandler()
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setattr(root, "level", logging.INFO)
    names = ("uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    for name in names:
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "level", logging.NOTSET)
        monkeypatch.setattr(logger, "handlers", [logging.NullHandler()])
        monkeypatch.setattr(logger, "propagate", True)
    async with serve(APP, log_level="error"):
        pass
    assert root.handlers == [handler] and root.level == logging.INFO
    assert [logging.getLogger(name).level for name in names] == [logging.ERROR] * 3
    access = logging.getLogger("uvicorn.access")
    assert (access.handlers, access.propagate) == ([], False)
    error = logging.getLogger("uvicorn.error")
    assert (len(error.handlers), error.propagate) == (1, True)  # left as they were


def test_a_server_left_running_is_reported() -> None:
    stop = threading.Event()
    left = threading.Thread(target=stop.wait, name=f"{SERVER_THREAD_PREFIX} for a test app")
    before = set(server_threads())
    left.start()
    try:
        problem = servers_left(before, "tests/test_x.py::test_y")
    finally:
        stop.set()
        left.join()
    assert problem is not None
    assert problem.startswith("tests/test_x.py::test_y: the test left 1 server(s) running")
    assert servers_left(before, "tests/test_x.py::test_y") is None


async def test_upstream_endpoints_answer_after_their_latency() -> None:
    async with (
        serve(upstream_app) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        for path, service, headers in [
            ("/auth", "auth", SIGNED_IN),
            ("/config", "config", {}),
            ("/settings", "settings", {}),
            ("/user_data/1", "user_data", {}),
        ]:
            started = anyio.current_time()
            response = await client.get(path, headers=headers)
            waited_ms = (anyio.current_time() - started) * 1000
            assert response.status_code == 200, (path, response.text)
            # The server awaited the service's latency before it answered.
            assert waited_ms >= services.LATENCY_MS[service], (path, waited_ms)
        assert response.json() == {"user_id": 1, "plan": "pro"}
        session = await client.get("/auth", headers=SIGNED_IN)
        assert session.json() == {"token": "session-ada", "user_id": 1}


async def test_upstream_errors_are_http_statuses() -> None:
    async with (
        serve(upstream_app) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        forged = await client.get("/auth", headers={"Authorization": "Bearer forged"})
        assert (forged.status_code, forged.json()) == (401, {"error": "no valid session"})
        no_token = await client.get("/auth")
        assert no_token.status_code == 401
        with services.outage("config"):
            down = await client.get("/config")
        assert (down.status_code, down.json()) == (
            503,
            {"error": "config: 503 Service Unavailable"},
        )
