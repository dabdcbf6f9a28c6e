"""`examples.streaming`: StreamedPage, and SendRecorder timing where the app sends."""

from __future__ import annotations

import gc
import logging
import re
import warnings

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Route

from examples.services import ServiceUnavailable
from examples.streaming import (
    FILL_SCRIPT,
    Message,
    Receive,
    Render,
    SendRecorder,
    Sent,
    StreamedPage,
    StreamedPart,
)

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


# --- SendRecorder before a response, and after a failed one -------------------


def test_first_byte_before_any_request_is_a_clear_error() -> None:
    recorder = SendRecorder(three_chunks_app)
    with pytest.raises(RuntimeError, match="no first byte to time: the recorder has served no"):
        _ = recorder.first_byte_ms
    assert str(recorder) == "no headers: the recorder has served no request yet"


async def test_an_app_that_fails_before_its_headers_prints_why() -> None:
    async def failing(scope, receive, send) -> None:
        await anyio.sleep(0.05)
        raise LookupError("no such page")

    recorder = SendRecorder(failing)
    with pytest.raises(LookupError):
        await get(recorder)
    expected = "the app raised LookupError('no such page') before sending its headers"
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        _ = recorder.first_byte_ms
    assert str(recorder) == f"no headers: {expected}"


async def test_a_response_cut_short_prints_as_incomplete() -> None:
    async def cut_short(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"shell", "more_body": True})
        raise LookupError("part failed")

    recorder = SendRecorder(cut_short)
    with pytest.raises(LookupError):
        await get(recorder)
    assert str(recorder).splitlines()[-2:] == [
        "incomplete response: the app raised LookupError('part failed')",
        "first byte 0 ms, last part 0 ms",
    ]


# --- StreamedPage -------------------------------------------------------------

SHELL = '<main><div id="fast">…</div><div id="slow">…</div></main>'


def after(seconds: float, html: str, error: Exception | None = None) -> Render:
    """A part that takes `seconds`, then returns `html` or raises `error`."""

    async def render() -> str:
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            cancelled.append(html)
            raise
        if error is not None:
            raise error
        return html

    return render


cancelled: list[str] = []


@pytest.fixture(autouse=True)
def no_cancelled_parts_yet() -> None:
    cancelled.clear()


def page(slow: Render | None = None, deadline: float | None = None) -> StreamedPage:
    return StreamedPage(
        SHELL,
        StreamedPart("fast", after(0.1, "<p>fast</p>"), fallback="<p>-</p>"),
        StreamedPart(
            "slow", slow or after(0.2, "<p>slow</p>"), fallback="<p>later</p>", deadline=deadline
        ),
    )


def bodies(recorder: SendRecorder) -> list[tuple[int, str]]:
    return [(sent.at_ms, sent.body.decode()) for sent in recorder.sent if sent.kind == "body"]


def fill(part_id: str, html: str) -> str:
    return f'<template id="{part_id}-ready">{html}</template><script>fillPart("{part_id}")</script>'


async def test_the_shell_leaves_at_once_and_each_part_when_ready() -> None:
    recorder = SendRecorder(page())
    response = await get(recorder)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert bodies(recorder) == [
        (0, SHELL + FILL_SCRIPT),
        (100, fill("fast", "<p>fast</p>")),
        (200, fill("slow", "<p>slow</p>")),
    ]
    assert recorder.complete


async def test_a_part_that_fails_after_the_headers_sends_its_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = SendRecorder(page(slow=after(0.15, "", ServiceUnavailable("slow: 503"))))
    with caplog.at_level(logging.ERROR, logger="examples.streaming"):
        response = await get(recorder)
    assert response.status_code == 200
    assert bodies(recorder)[-1] == (150, fill("slow", "<p>later</p>"))
    assert recorder.complete and recorder.raised is None
    [record] = caplog.records
    assert record.getMessage() == "part 'slow' failed; sent its fallback"
    assert isinstance(record.exc_info[1], ServiceUnavailable)


async def test_a_part_past_its_deadline_is_cancelled_and_sends_its_fallback() -> None:
    recorder = SendRecorder(page(slow=after(2, "<p>slow</p>"), deadline=0.3))
    await get(recorder)
    assert bodies(recorder)[-1] == (300, fill("slow", "<p>later</p>"))
    assert cancelled == ["<p>slow</p>"]


def disconnect_after(seconds: float) -> Receive:
    async def receive() -> dict[str, str]:
        await anyio.sleep(seconds)
        return {"type": "http.disconnect"}

    return receive


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_a_client_that_leaves_cancels_the_parts_at_once(spec_version: str) -> None:
    """On ASGI 2.4 Starlette no longer listens for the disconnect; the page does."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    endpoint = page(slow=after(2, "<p>slow</p>"))
    scope = {"type": "http", "method": "GET", "asgi": {"spec_version": spec_version}}
    started = anyio.current_time()
    await endpoint(scope, disconnect_after(0.15), send)
    assert round((anyio.current_time() - started) * 1000) == 150
    assert cancelled == ["<p>slow</p>"]
    assert [message["type"] for message in sent] == ["http.response.start"] + [
        "http.response.body"
    ] * 2


async def test_a_send_that_raises_oserror_ends_the_response_quietly() -> None:
    """ASGI 2.4 servers raise OSError from `send` once the client has gone."""

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and b"<p>fast</p>" in message["body"]:
            raise OSError("client gone")

    async def never_disconnects() -> dict[str, str]:
        await anyio.sleep_forever()
        raise AssertionError

    endpoint = page(slow=after(2, "<p>slow</p>"))
    started = anyio.current_time()
    await endpoint({"type": "http", "method": "GET"}, never_disconnects, send)
    assert round((anyio.current_time() - started) * 1000) == 100
    assert cancelled == ["<p>slow</p>"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_only_get_and_head_are_served(method: str) -> None:
    app = Starlette(routes=[Route("/streamed", page())])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        response = await client.request(method, "/streamed")
        assert (await client.get("/streamed")).status_code == 200
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert cancelled == []


async def test_head_gets_the_headers_and_no_body_and_starts_no_part() -> None:
    started: list[str] = []

    async def render() -> str:
        started.append("fast")
        return "<p>fast</p>"

    recorder = SendRecorder(StreamedPage(SHELL, StreamedPart("fast", render, fallback="<p>-</p>")))
    app = Starlette(routes=[Route("/streamed", recorder)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        head = await client.head("/streamed")
        get = await client.get("/streamed")
    assert head.status_code == get.status_code == 200
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.content == b""
    assert started == ["fast"]  # by the GET alone


async def test_route_methods_apply_to_the_page_too() -> None:
    """Starlette's Route honours `methods=` for an ASGI endpoint as well."""
    app = Starlette(routes=[Route("/streamed", page(), methods=["POST"])])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        response = await client.get("/streamed")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"  # Starlette's answer, not the page's


async def test_middleware_that_adds_headers_does_not_change_the_next_response() -> None:
    """GZipMiddleware adds content-encoding to the headers list it is sent."""
    app = Starlette(
        routes=[Route("/streamed", page())],
        middleware=[Middleware(GZipMiddleware, minimum_size=1)],
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        texts = [(await client.get("/streamed")).text for _ in range(2)]
    assert texts[0] == texts[1]
    assert texts[0].startswith(SHELL)


class Stop(BaseException):
    pass


async def test_an_error_of_send_comes_out_unwrapped() -> None:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise RuntimeError("send failed")

    async def never_disconnects() -> dict[str, str]:
        await anyio.sleep_forever()
        raise AssertionError

    with pytest.raises(RuntimeError, match=r"^send failed$"):
        await page()({"type": "http", "method": "GET"}, never_disconnects, send)
    assert sorted(cancelled) == ["<p>fast</p>", "<p>slow</p>"]


async def test_a_base_exception_of_a_part_comes_out_unwrapped() -> None:
    async def stop() -> str:
        await anyio.sleep(0.1)
        raise Stop

    recorder = SendRecorder(page(slow=stop))
    with pytest.raises(Stop):
        await get(recorder)
    assert not recorder.complete


async def test_an_error_of_receive_comes_out_unwrapped() -> None:
    async def receive() -> dict[str, str]:
        await anyio.sleep(0.05)
        raise RuntimeError("receive failed")

    async def send(message: Message) -> None:
        pass

    with pytest.raises(RuntimeError, match=r"^receive failed$"):
        await page()({"type": "http", "method": "GET"}, receive, send)


@pytest.mark.parametrize("part_id", ["a&b", "1st", "", "a b", 'a"b', "a'b", "-a"])
def test_a_part_id_that_would_need_escaping_is_refused(part_id: str) -> None:
    with pytest.raises(ValueError, match="cannot be used: start it with an ASCII letter"):
        StreamedPart(part_id, after(0.1, ""), fallback="")


async def test_a_part_id_with_digits_dashes_and_underscores_fills() -> None:
    shell = '<div id="side-bar_2">…</div>'
    recorder = SendRecorder(
        StreamedPage(shell, StreamedPart("side-bar_2", after(0.1, "<p>x</p>"), fallback=""))
    )
    await get(recorder)
    assert bodies(recorder)[-1] == (100, fill("side-bar_2", "<p>x</p>"))


def test_a_part_without_a_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match="part 'aside' has no placeholder"):
        StreamedPage(SHELL, StreamedPart("aside", after(0.1, ""), fallback=""))


async def test_a_websocket_scope_is_refused() -> None:
    with pytest.raises(RuntimeError, match="serves HTTP, not websocket"):
        await page()({"type": "websocket"}, disconnect_after(0), None)


@pytest.mark.parametrize("failing", ["http.response.start", "http.response.body"])
async def test_a_send_that_fails_before_the_parts_leaves_no_stream_open(failing: str) -> None:
    """A stream left open warns when it is collected, in another test or a reader's app."""

    async def send(message: Message) -> None:
        if message["type"] == failing:
            raise OSError("client gone")

    async def never_disconnects() -> dict[str, str]:
        await anyio.sleep_forever()
        raise AssertionError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await page()({"type": "http", "method": "GET"}, never_disconnects, send)
        gc.collect()
    assert [str(warning.message) for warning in caught] == []
