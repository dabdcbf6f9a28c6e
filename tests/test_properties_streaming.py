"""Properties of `examples.streaming.StreamedPage`, on asyncio and Trio virtual clocks.

Hypothesis draws a page of parts with random latencies, some failing, some
hanging, each with or without a deadline, and a client that may leave at a
random moment (an `http.disconnect` on `receive()`, or `send` raising
OSError as ASGI 2.4 servers do). Each example runs in a fresh event loop on
a virtual clock.

Invariants checked for every example:

- the endpoint never raises;
- a client that stays gets a complete response: the shell at 0 ms, then
  every part exactly once, its HTML if it succeeded in time and its
  fallback otherwise, each at the moment it was ready;
- a client that leaves stops the page at once: the endpoint returns at that
  moment, and no part runs after it;
- another method than GET gets 405 and runs no part;
- no task is left running and no warning is emitted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import anyio
import looptime
import pytest
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.streaming import FILL_SCRIPT, Message, StreamedPage, StreamedPart

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, database=None)
HANG = 30.0


class Boom(Exception):
    pass


@dataclass(frozen=True)
class Part:
    latency_ms: int
    outcome: str  # "ok", "fail" or "hang"
    deadline_ms: int | None  # ends in 5, so it never ties with a latency

    def ready_ms(self) -> int:
        """When its chunk is ready, and whether it is the part's own HTML."""
        ends = HANG * 1000 if self.outcome == "hang" else self.latency_ms
        return int(min(ends, math.inf if self.deadline_ms is None else self.deadline_ms))

    def succeeds(self) -> bool:
        in_time = self.deadline_ms is None or self.latency_ms < self.deadline_ms
        return self.outcome == "ok" and in_time


@dataclass(frozen=True)
class Page:
    parts: tuple[Part, ...]
    leaves_ms: int | None  # the client leaves at this moment
    leaves_by: str  # "disconnect" message, or "oserror" from send
    method: str


@st.composite
def pages(draw: st.DrawFn) -> Page:
    parts = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        outcome = draw(st.sampled_from(["ok", "ok", "fail", "hang"]))
        deadline = draw(st.none() | st.integers(0, 30).map(lambda n: n * 10 + 5))
        if outcome == "hang" and deadline is None:
            deadline = 305  # a hanging part without a deadline would never end
        parts.append(Part(draw(st.integers(0, 30)) * 10, outcome, deadline))
    leaves = draw(st.none() | st.integers(0, 40).map(lambda n: n * 10 + 2))
    return Page(
        tuple(parts),
        leaves,
        draw(st.sampled_from(["disconnect", "oserror"])),
        draw(st.sampled_from(["GET"] * 5 + ["POST", "PUT"])),
    )


@dataclass
class Observed:
    sent: list[tuple[int, Message]] = field(default_factory=list)
    part_ran_after_return: list[int] = field(default_factory=list)
    parts_started: int = 0
    returned_ms: int = -1


def render(index: int, part: Part, observed: Observed, returned: anyio.Event) -> Any:
    async def render_part() -> str:
        observed.parts_started += 1
        await anyio.sleep(HANG if part.outcome == "hang" else part.latency_ms / 1000)
        if returned.is_set():
            observed.part_ran_after_return.append(index)
        if part.outcome == "fail":
            raise Boom(index)
        return f"<p>part {index}</p>"

    return render_part


async def serve(page: Page) -> Observed:
    observed = Observed()
    returned = anyio.Event()
    shell = "".join(f'<div id="p{index}"></div>' for index in range(len(page.parts)))
    endpoint = StreamedPage(
        shell,
        *(
            StreamedPart(
                f"p{index}",
                render(index, part, observed, returned),
                fallback=f"<p>fallback {index}</p>",
                deadline=None if part.deadline_ms is None else part.deadline_ms / 1000,
            )
            for index, part in enumerate(page.parts)
        ),
    )
    tasks_before = len(anyio.get_running_tasks())
    began = anyio.current_time()

    def now_ms() -> int:
        return round((anyio.current_time() - began) * 1000)

    async def receive() -> Message:
        if page.leaves_ms is None or page.leaves_by != "disconnect":
            await anyio.sleep_forever()
        await anyio.sleep(page.leaves_ms / 1000)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        left = page.leaves_ms is not None and now_ms() >= page.leaves_ms
        if left and page.leaves_by == "oserror":
            raise OSError("client gone")
        observed.sent.append((now_ms(), message))

    scope = {"type": "http", "method": page.method, "asgi": {"spec_version": "2.4"}}
    await endpoint(scope, receive, send)
    observed.returned_ms = now_ms()
    returned.set()
    await anyio.sleep(HANG * 2)  # a part left running would finish by now
    assert len(anyio.get_running_tasks()) == tasks_before, "a task was left running"
    return observed


def run(page: Page, backend: str) -> Observed:
    options: dict[str, Any] = (
        {"loop_factory": looptime.new_event_loop}
        if backend == "asyncio"
        else {"clock": trio.testing.MockClock(autojump_threshold=0)}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        observed = anyio.run(serve, page, backend=backend, backend_options=options)
    assert [str(warning.message) for warning in caught] == []
    return observed


def chunk(index: int, html: str) -> bytes:
    return (
        f'<template id="p{index}-ready">{html}</template><script>fillPart("p{index}")</script>'
    ).encode()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@PROPERTY_SETTINGS
@given(page=pages())
def test_streamed_page_properties(backend: str, page: Page) -> None:
    observed = run(page, backend)
    assert observed.part_ran_after_return == []
    if page.method != "GET":
        assert observed.parts_started == 0
        assert observed.sent[0][1]["status"] == 405
        return
    end_ms = max(part.ready_ms() for part in page.parts)
    bodies = [(at, message) for at, message in observed.sent if message["type"].endswith("body")]
    if page.leaves_ms is None or page.leaves_ms > end_ms:
        expected = {
            (
                part.ready_ms(),
                chunk(index, f"<p>{'part' if part.succeeds() else 'fallback'} {index}</p>"),
            )
            for index, part in enumerate(page.parts)
        }
        assert bodies[0][0] == 0 and bodies[0][1]["body"].endswith(FILL_SCRIPT.encode())
        assert {(at, message["body"]) for at, message in bodies[1:-1]} == expected
        assert len(bodies) == len(page.parts) + 2
        assert bodies[-1][1] == {"type": "http.response.body", "body": b"", "more_body": False}
        assert observed.returned_ms == end_ms
    else:
        # Stopped the moment the client left: at the message, or at the first
        # send after it when the server reports it by raising OSError.
        assert all(message.get("more_body", True) for _, message in bodies)
        if page.leaves_by == "disconnect":
            assert observed.returned_ms == page.leaves_ms
        else:
            next_send = min(
                [part.ready_ms() for part in page.parts if part.ready_ms() >= page.leaves_ms]
            )
            assert observed.returned_ms == next_send
