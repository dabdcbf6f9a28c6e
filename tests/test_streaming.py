"""`examples.streaming.SendRecorder`: timed where the app sends, not where the client reads."""

from __future__ import annotations

import anyio
import httpx
import pytest

from examples.streaming import SendRecorder, Sent

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python


async def three_chunks_app(scope, receive, send) -> None:
    """Headers at once, a chunk at 0, 100 and 250 ms, then the empty closing message."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for delay, body in ((0, b"a"), (0.1, b"b"), (0.15, b"c")):
        await anyio.sleep(delay)
        await send({"type": "http.response.body", "body": body, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def get(app) -> httpx.Response:
    """GET / from the app, in-process."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        return await client.get("/")


async def test_records_each_message_on_the_loop_clock() -> None:
    recorder = SendRecorder(three_chunks_app)
    response = await get(recorder)
    assert response.text == "abc"
    assert recorder.sent == [
        Sent(0, "start"),
        Sent(0, "body", b"a"),
        Sent(100, "body", b"b"),
        Sent(250, "body", b"c"),
    ]
    assert recorder.first_byte_ms == 0
    assert recorder.last_part_ms == 250


async def test_the_in_process_client_sees_nothing_until_the_end() -> None:
    """Why the recorder exists: ASGITransport buffers a streamed body."""
    recorder = SendRecorder(three_chunks_app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=recorder), base_url="http://test"
    ) as client:
        started = anyio.current_time()
        async with client.stream("GET", "/") as response:
            headers_at = anyio.current_time() - started
            await response.aread()
    assert round(headers_at * 1000) == 250
    assert recorder.first_byte_ms == 0


async def test_each_request_starts_a_new_record() -> None:
    recorder = SendRecorder(three_chunks_app)
    await get(recorder)
    await get(recorder)
    assert [sent.at_ms for sent in recorder.sent] == [0, 0, 100, 250]


async def test_prints_one_line_per_message_then_the_figures() -> None:
    recorder = SendRecorder(three_chunks_app)
    await get(recorder)
    assert str(recorder).splitlines() == [
        "    0 ms  headers",
        "    0 ms     1 bytes  a",
        "  100 ms     1 bytes  b",
        "  250 ms     1 bytes  c",
        "first byte 0 ms, last part 250 ms",
    ]


async def test_prints_a_long_chunk_shortened() -> None:
    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 50})

    recorder = SendRecorder(app)
    await get(recorder)
    assert str(recorder).splitlines()[1] == "    0 ms    50 bytes  " + "x" * 39 + "…"


async def test_passes_other_scopes_through_unrecorded() -> None:
    seen = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["type"])

    recorder = SendRecorder(app)
    await recorder({"type": "lifespan"}, None, None)
    assert seen == ["lifespan"]
    assert recorder.sent == []


async def test_concurrent_requests_do_not_mix_their_records() -> None:
    async def delayed_app(scope, receive, send) -> None:
        await anyio.sleep(float(scope["query_string"].decode().split("=")[1]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    recorder = SendRecorder(delayed_app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=recorder), base_url="http://test"
    ) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.get, "/?delay=0.2")
            await anyio.sleep(0.01)
            tg.start_soon(client.get, "/?delay=0.1")
    # The latest request's record holds only its own two messages.
    assert recorder.sent == [Sent(100, "start"), Sent(100, "body", b"x")]


async def test_a_response_without_a_body_prints() -> None:
    async def no_content(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    recorder = SendRecorder(no_content)
    await get(recorder)
    assert str(recorder).splitlines()[-1] == "first byte 0 ms, last part 0 ms"
