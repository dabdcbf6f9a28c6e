"""Record when an ASGI app sends each part of its response.

An in-process client such as httpx's `ASGITransport` hands the response to
the caller only after the app has finished: headers and every streamed chunk
arrive together at the end. Timing the client would make a streamed page
look exactly as slow as a buffered one. `SendRecorder` measures where the
bytes leave the app instead: it wraps the app's `send` and notes the event
loop's time of `http.response.start` and of each `http.response.body`
message, so it reads virtual time under a test clock and real time otherwise.

    recorder = SendRecorder(app)
    transport = httpx.ASGITransport(app=recorder)
    ...
    print(recorder)  # one line per message, then the two figures
    recorder.first_byte_ms, recorder.last_part_ms

The recorder keeps the messages of the latest request it served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio

__all__ = ["SendRecorder", "Sent"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Characters of a chunk shown when the recorder is printed.
PREVIEW = 40

ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Sent:
    """One message the app sent: when (ms after the request arrived) and what."""

    at_ms: int
    kind: str  # "start" (status and headers) or "body" (a chunk of the body)
    body: bytes = b""


class SendRecorder:
    """An ASGI app that runs `app` and records when it sends each message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.sent: list[Sent] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = anyio.current_time()
        # This request's own list: a concurrent request replaces `self.sent`
        # but cannot append to this one.
        sent: list[Sent] = []
        self.sent = sent

        async def recording_send(message: Message) -> None:
            at_ms = round((anyio.current_time() - arrived) * 1000)
            if message["type"] == "http.response.start":
                sent.append(Sent(at_ms, "start"))
            elif message["type"] == "http.response.body" and message.get("body"):
                sent.append(Sent(at_ms, "body", bytes(message["body"])))
            await send(message)

        await self.app(scope, receive, recording_send)

    @property
    def first_byte_ms(self) -> int:
        """When the status line and headers left the app: the time to first byte."""
        return next(sent.at_ms for sent in self.sent if sent.kind == "start")

    @property
    def last_part_ms(self) -> int:
        """When the last non-empty chunk of the body left the app (0: no body)."""
        return max((sent.at_ms for sent in self.sent if sent.kind == "body"), default=0)

    def __str__(self) -> str:
        lines = []
        for sent in self.sent:
            if sent.kind == "start":
                lines.append(f"{sent.at_ms:>5} ms  headers")
            else:
                text = sent.body.decode(errors="replace")
                preview = text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"
                lines.append(f"{sent.at_ms:>5} ms  {len(sent.body):>4} bytes  {preview}")
        lines.append(f"first byte {self.first_byte_ms} ms, last part {self.last_part_ms} ms")
        return "\n".join(lines)
