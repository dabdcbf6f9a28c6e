# /// script
# requires-python = ">=3.11"
# dependencies = ["anyio>=4.15"]
# ///
"""Stream a page part by part, and record when an ASGI app sends each part.

`StreamedPage` is an ASGI app (mount it in Starlette or FastAPI as a route's
endpoint) that sends the page's shell at once, with a placeholder for each
part, and then each part's HTML as soon as its data is ready; a small
script in the shell swaps the part in for its placeholder:

    page = StreamedPage(
        '<main><div id="header">Loading...</div></main>',
        StreamedPart("header", render_header, fallback="<header></header>"),
    )

- Every part starts at once; the response ends when the last part is sent.
  Parts are sent in the order they become ready, not the order they are
  listed in.
- A part may be nested in another: `StreamedPart(..., inside="dashboard")`
  has its placeholder in the HTML of the part `dashboard` instead of the
  shell. It still starts at once, but it is sent only after that part; if
  that part's HTML (its fallback, say) has no placeholder for it, it is
  dropped with a warning and cancelled if it is still running, so the
  response does not wait for HTML it cannot send.
- A part that raises an `Exception`, or takes longer than its `deadline`,
  sends its `fallback` instead, so the response completes. A
  BaseException that is not an Exception (KeyboardInterrupt, SystemExit)
  ends the response and comes out of the app.
- When the client leaves (`http.disconnect`, or `send` raising OSError),
  the parts still running are cancelled at once.
- Any other error of `send` or `receive` comes out of the app as itself,
  not wrapped in an ExceptionGroup.
- GET and HEAD are served (HEAD: the headers and an empty body, no part
  started); another method gets 405 Method Not Allowed with
  `Allow: GET, HEAD`.
- A part's id starts with an ASCII letter, then letters, digits, `_` or
  `-`: it is written into the page's HTML and script as it is.

An in-process client such as httpx's `ASGITransport` hands the response to
the caller only after the app has finished, so timing the client would make
a streamed page look exactly as slow as a buffered one. `SendRecorder`
measures where the bytes leave the app instead: it wraps the app's `send`
and notes the event loop's time of `http.response.start` and of each
`http.response.body` message, so it reads virtual time under a test clock
and real time otherwise.

    recorder = SendRecorder(app)
    transport = httpx.ASGITransport(app=recorder)
    ...
    print(recorder)  # one line per message, then the two figures
    recorder.first_byte_ms, recorder.last_part_ms

The recorder keeps the messages of the latest request it served.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import ObjectSendStream, TaskGroup

__all__ = ["SendRecorder", "Sent", "StreamedPage", "StreamedPart"]

logger = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# A part's render function: a coroutine function, so that it can be handed
# to a task group or anyio.gather as it is.
Render = Callable[[], Coroutine[Any, Any, str]]

# Characters of a chunk shown when the recorder is printed.
PREVIEW = 40
# Defined once in the shell: moves a part's HTML into its placeholder.
FILL_SCRIPT = (
    "<script>function fillPart(id) {"
    " const ready = document.getElementById(id + '-ready');"
    " document.getElementById(id).replaceWith(ready.content);"
    " ready.remove(); }</script>"
)
Headers = list[tuple[bytes, bytes]]
HTML_HEADERS: Headers = [(b"content-type", b"text/html; charset=utf-8")]
# An id that needs no escaping in an HTML attribute nor in a script string.
PART_ID = re.compile(r"[A-Za-z][\w-]*")


def has_placeholder(html: str, part_id: str) -> bool:
    """Whether `html` has an element with `id="part_id"`.

    The attribute must follow whitespace: `data-id="x"` or `grid="x"` hold
    the text `id="x"` but give no element that id.
    """
    return re.search(rf'\sid="{re.escape(part_id)}"', html) is not None


@dataclass(frozen=True)
class StreamedPart:
    """One part of a streamed page.

    `id` is the id of the part's placeholder element in the shell: an
    ASCII letter, then letters, digits, `_` or `-`.
    """

    id: str
    render: Render
    fallback: str  # HTML sent instead when the part fails or is too slow
    deadline: float | None = None  # seconds; None waits as long as it takes
    # The id of the part whose HTML holds this part's placeholder; None: the
    # placeholder is in the shell.
    inside: str | None = None

    def __post_init__(self) -> None:
        if not PART_ID.fullmatch(self.id):
            # Escaped, the id would no longer match its placeholder in the
            # fill script (a script's text is not HTML-unescaped).
            raise ValueError(
                f"part id {self.id!r} cannot be used: start it with an ASCII "
                "letter and use only letters, digits, '_' and '-'"
            )


class StreamedPage:
    """An ASGI app: the shell at once, then each part when it is ready."""

    def __init__(self, shell: str, *parts: StreamedPart) -> None:
        # The parts nested in each part, by the outer part's id.
        self.nested: dict[str, list[StreamedPart]] = {}
        for part in parts:
            _check_part(shell, part, self.nested, parts)
            self.nested[part.id] = []
            if part.inside is not None:
                self.nested[part.inside].append(part)
        self.shell = shell
        self.parts = parts

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if scope["type"] != "http":
            raise RuntimeError(f"StreamedPage serves HTTP, not {scope['type']}")
        if scope["method"] == "HEAD":
            # The headers a GET would get, and no body: no part is started.
            await _send_start(send, 200, HTML_HEADERS)
            await _send_body(send, "", more_body=False)
            return
        if scope["method"] != "GET":
            await _method_not_allowed(send)
            return
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                # Servers on ASGI 2.4 and later do not need the app to
                # listen, and Starlette then stops listening too: a client
                # that left would be noticed only at the next send. Listen
                # here instead.
                tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
                try:
                    await self._respond(tg, send)
                except OSError:
                    # ASGI 2.4: `send` raises OSError once the client has gone.
                    logger.debug("client left during %s", scope.get("path"))
                except Exception as exc:
                    # Re-raised below, outside the task group, so that it is
                    # not wrapped in an ExceptionGroup.
                    error = exc
                tg.cancel_scope.cancel()  # the response is over: stop listening
        except BaseExceptionGroup as group:
            # A task's error (`receive` failing, a part's KeyboardInterrupt):
            # one error comes out as itself.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        if error is not None:
            raise error

    async def _respond(self, tg: TaskGroup, send: Send) -> None:
        streams = anyio.create_memory_object_stream[Ready](len(self.parts))
        ready_out, ready_in = streams
        progress = _Progress({part.id: anyio.CancelScope() for part in self.parts})
        async with ready_out:
            for part in self.parts:
                scope = progress.scopes[part.id]
                tg.start_soon(_render_part, part, ready_out.clone(), scope)
        # Closed however the response ends, the headers' send failing included.
        async with ready_in:
            await _send_start(send, 200, HTML_HEADERS)
            await _send_body(send, self.shell + FILL_SCRIPT)
            async for ready in ready_in:
                if ready.part.id in progress.done:
                    continue  # dropped with its outer part while on its way
                outer = ready.part.inside
                if outer is not None and outer not in progress.done:
                    progress.waiting.setdefault(outer, []).append(ready)
                    continue
                await self._send_part(send, ready, progress)
        await _send_body(send, "", more_body=False)

    async def _send_part(self, send: Send, ready: Ready, progress: _Progress) -> None:
        """Send a part whose placeholder is on the page, then its nested parts."""
        part = ready.part
        # The id needs no escaping: StreamedPart accepts only safe ones.
        chunk = (
            f'<template id="{part.id}-ready">{ready.html}</template>'
            f'<script>fillPart("{part.id}")</script>'
        )
        await _send_body(send, chunk)
        progress.done.add(part.id)
        for nested in self.nested[part.id]:
            if not has_placeholder(ready.html, nested.id):
                self._drop(nested, progress)
        for nested_ready in progress.waiting.pop(part.id, []):
            if nested_ready.part.id not in progress.done:
                await self._send_part(send, nested_ready, progress)

    def _drop(self, part: StreamedPart, progress: _Progress) -> None:
        """Drop a part its outer part made no placeholder for, and its nested parts.

        Filling a placeholder that is not there would fail in the browser;
        waiting for the part would keep the response open for nothing.
        """
        logger.warning(
            "part %r dropped: part %r sent no placeholder for it",
            part.id,
            part.inside,
        )
        progress.done.add(part.id)
        progress.scopes[part.id].cancel()
        progress.waiting.pop(part.id, None)
        for nested in self.nested[part.id]:
            self._drop(nested, progress)


def _check_part(
    shell: str,
    part: StreamedPart,
    listed: Mapping[str, object],
    parts: tuple[StreamedPart, ...],
) -> None:
    """Raise ValueError if `part` cannot be placed; `listed`: the parts before it."""
    if part.id in listed:
        raise ValueError(f"two parts have the id {part.id!r}")
    if part.inside is None:
        if not has_placeholder(shell, part.id):
            raise ValueError(
                f"part {part.id!r} has no placeholder: put an element "
                f'with id="{part.id}" in the shell'
            )
        return
    if part.inside == part.id:
        raise ValueError(f"part {part.id!r} cannot be inside itself")
    if part.inside not in listed:
        if all(other.id != part.inside for other in parts):
            raise ValueError(
                f"part {part.id!r} is inside {part.inside!r}, but no part has "
                f"the id {part.inside!r}: list that part, or fix `inside`"
            )
        # Listing the outer part first also rules out a cycle.
        raise ValueError(
            f"part {part.id!r} is inside {part.inside!r}, which is not "
            "listed before it: list the outer part first"
        )
    if has_placeholder(shell, part.id):
        # getElementById() would find the shell's element, not the nested one.
        raise ValueError(
            f"part {part.id!r} is inside {part.inside!r}, but the shell has an "
            f'element with id="{part.id}" too: give one of them another id'
        )


@dataclass
class _Progress:
    """Where one response is: which parts are done and which wait for their outer part."""

    scopes: dict[str, anyio.CancelScope]  # each part's task, to cancel a dropped one
    done: set[str] = field(default_factory=set)  # sent or dropped
    # Nested parts that were ready before their outer part was sent.
    waiting: dict[str, list[Ready]] = field(default_factory=dict)


@dataclass(frozen=True)
class Ready:
    """A part's HTML (or its fallback), ready to be sent."""

    part: StreamedPart
    html: str


async def _render_part(
    part: StreamedPart,
    ready: ObjectSendStream[Ready],
    cancel_scope: anyio.CancelScope,
) -> None:
    """Render one part, or its fallback, and hand it to the response.

    `cancel_scope` is cancelled when the part is dropped: its outer part
    sent no placeholder for it.
    """
    with cancel_scope:
        async with ready:
            rendered = part.fallback
            deadline = float("inf") if part.deadline is None else part.deadline
            with anyio.move_on_after(deadline):
                try:
                    rendered = await part.render()
                except Exception:
                    # After the headers there is no error page to send: log the
                    # failure with its traceback and keep the page whole.
                    logger.exception("part %r failed; sent its fallback", part.id)
            # The stream is closed if the response ended before this part.
            with contextlib.suppress(anyio.BrokenResourceError):
                await ready.send(Ready(part, rendered))


async def _cancel_on_disconnect(
    receive: Receive,
    cancel_scope: anyio.CancelScope,
) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            cancel_scope.cancel()
            return


async def _send_start(send: Send, status: int, headers: Headers) -> None:
    message = {"type": "http.response.start", "status": status}
    # A copy: middleware may add to the list it gets (GZipMiddleware adds
    # content-encoding), and the next response must not inherit that.
    await send({**message, "headers": list(headers)})


async def _send_body(send: Send, text: str, more_body: bool = True) -> None:
    message = {"type": "http.response.body", "body": text.encode()}
    await send({**message, "more_body": more_body})


async def _method_not_allowed(send: Send) -> None:
    plain_text = (b"content-type", b"text/plain; charset=utf-8")
    await _send_start(send, 405, [(b"allow", b"GET, HEAD"), plain_text])
    await _send_body(send, "Method Not Allowed", more_body=False)


@dataclass(frozen=True)
class Sent:
    """One message the app sent: when (ms after the request came) and what."""

    at_ms: int
    kind: str  # "start" (status and headers) or "body" (a chunk of the body)
    body: bytes = b""


class SendRecorder:
    """An ASGI app that runs `app` and records when it sends each message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sent: list[Sent] = []
        self.served = False  # a request has been served (or tried)
        self.complete = False  # the last response sent its final body message
        # What the app raised, if it did.
        self.raised: BaseException | None = None

    async def __call__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = anyio.current_time()
        # This request's own list: a concurrent request replaces `self.sent`
        # but cannot append to this one.
        sent: list[Sent] = []
        self.sent, self.served = sent, True
        self.complete, self.raised = False, None

        async def recording_send(message: Message) -> None:
            at_ms = round((anyio.current_time() - arrived) * 1000)
            if message["type"] == "http.response.start":
                sent.append(Sent(at_ms, "start"))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    sent.append(Sent(at_ms, "body", bytes(message["body"])))
                if not message.get("more_body", False) and sent is self.sent:
                    self.complete = True
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except BaseException as exc:
            if sent is self.sent:
                self.raised = exc
            raise

    @property
    def first_byte_ms(self) -> int:
        """When the status line and headers left the app: time to first byte.

        Raises RuntimeError if the latest request sent no headers.
        """
        for sent in self.sent:
            if sent.kind == "start":
                return sent.at_ms
        raise RuntimeError(f"no first byte to time: {self._no_headers()}")

    @property
    def last_part_ms(self) -> int:
        """When the last non-empty chunk of the body left the app (0: none)."""
        bodies = [sent.at_ms for sent in self.sent if sent.kind == "body"]
        return max(bodies, default=0)

    def _no_headers(self) -> str:
        if not self.served:
            return "the recorder has served no request yet"
        if self.raised is not None:
            return f"the app raised {self.raised!r} before sending its headers"
        return "the app ended without sending its headers"

    def __str__(self) -> str:
        lines = []
        for sent in self.sent:
            if sent.kind == "start":
                lines.append(f"{sent.at_ms:>5} ms  headers")
            else:
                text = sent.body.decode(errors="replace")
                if len(text) > PREVIEW:
                    text = text[: PREVIEW - 1] + "…"
                size = f"{len(sent.body):>4} bytes"
                lines.append(f"{sent.at_ms:>5} ms  {size}  {text}")
        if not any(sent.kind == "start" for sent in self.sent):
            lines.append(f"no headers: {self._no_headers()}")
            return "\n".join(lines)
        if not self.complete:
            ended = "the body never ended"
            if self.raised is not None:
                ended = f"the app raised {self.raised!r}"
            lines.append(f"incomplete response: {ended}")
        first, last = self.first_byte_ms, self.last_part_ms
        lines.append(f"first byte {first} ms, last part {last} ms")
        return "\n".join(lines)
