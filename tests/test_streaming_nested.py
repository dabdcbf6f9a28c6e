"""`examples.streaming`: parts nested in other parts, and parts sent out of order.

Page 1.3 (docs/patterns/strategic-suspense-boundaries.md) relies on these: a part
listed first but ready last is sent last; a part whose placeholder is in
another part's HTML is sent after that part, never before, and is dropped
when that part's HTML has no placeholder for it (its fallback, say).
"""

from __future__ import annotations

import logging

import anyio
import pytest

from examples.services import ServiceUnavailable
from examples.streaming import Message, Receive, Render, SendRecorder, StreamedPage, StreamedPart
from tests.test_streaming import bodies, fill, get

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]

SHELL = '<main><div id="outer">…</div><div id="side">…</div></main>'
OUTER_HTML = '<section>user <div id="inner">…</div></section>'

cancelled: list[str] = []


@pytest.fixture(autouse=True)
def no_cancelled_parts_yet() -> None:
    cancelled.clear()


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


def nested_page(outer: Render, inner: Render, outer_fallback: str = "<p>-</p>") -> StreamedPage:
    return StreamedPage(
        SHELL,
        StreamedPart("outer", outer, fallback=outer_fallback),
        StreamedPart("inner", inner, fallback="<p>no figures</p>", inside="outer"),
        StreamedPart("side", after(0.05, "<p>side</p>"), fallback=""),
    )


async def test_parts_are_sent_as_they_become_ready_not_as_listed() -> None:
    page = StreamedPage(
        SHELL,
        StreamedPart("outer", after(0.3, "<p>slow</p>"), fallback=""),
        StreamedPart("side", after(0.1, "<p>fast</p>"), fallback=""),
    )
    recorder = SendRecorder(page)
    await get(recorder)
    assert bodies(recorder)[1:] == [
        (100, fill("side", "<p>fast</p>")),
        (300, fill("outer", "<p>slow</p>")),
    ]


async def test_a_nested_part_ready_first_waits_for_its_outer_part() -> None:
    recorder = SendRecorder(nested_page(after(0.2, OUTER_HTML), after(0.1, "<p>42</p>")))
    await get(recorder)
    assert bodies(recorder)[1:] == [
        (50, fill("side", "<p>side</p>")),
        (200, fill("outer", OUTER_HTML)),
        (200, fill("inner", "<p>42</p>")),
    ]
    assert recorder.complete


async def test_a_nested_part_ready_later_is_sent_when_ready() -> None:
    recorder = SendRecorder(nested_page(after(0.1, OUTER_HTML), after(0.2, "<p>42</p>")))
    await get(recorder)
    assert bodies(recorder)[1:] == [
        (50, fill("side", "<p>side</p>")),
        (100, fill("outer", OUTER_HTML)),
        (200, fill("inner", "<p>42</p>")),
    ]


async def test_a_failing_nested_part_sends_its_fallback_inside_its_outer_part() -> None:
    failing = after(0.15, "", ServiceUnavailable("inner: 503"))
    recorder = SendRecorder(nested_page(after(0.1, OUTER_HTML), failing))
    await get(recorder)
    assert bodies(recorder)[-1] == (150, fill("inner", "<p>no figures</p>"))
    assert recorder.complete and recorder.raised is None


async def test_a_nested_part_is_dropped_when_its_outer_part_fell_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = after(0.1, "", ServiceUnavailable("outer: 503"))
    recorder = SendRecorder(nested_page(failing, after(0.2, "<p>42</p>")))
    with caplog.at_level(logging.WARNING, logger="examples.streaming"):
        await get(recorder)
    assert bodies(recorder)[1:] == [
        (50, fill("side", "<p>side</p>")),
        (100, fill("outer", "<p>-</p>")),
    ]
    assert recorder.complete
    assert "part 'inner' dropped: part 'outer' sent no placeholder for it" in caplog.messages


async def test_a_fallback_with_the_placeholder_keeps_the_nested_part() -> None:
    failing = after(0.1, "", ServiceUnavailable("outer: 503"))
    fallback = '<p>guest</p><div id="inner">…</div>'
    recorder = SendRecorder(nested_page(failing, after(0.2, "<p>42</p>"), fallback))
    await get(recorder)
    assert bodies(recorder)[-1] == (200, fill("inner", "<p>42</p>"))


async def test_parts_nested_two_deep_wait_in_turn() -> None:
    shell = '<div id="a">…</div>'
    page = StreamedPage(
        shell,
        StreamedPart("a", after(0.3, '<div id="b">…</div>'), fallback=""),
        StreamedPart("b", after(0.2, '<div id="c">…</div>'), fallback="", inside="a"),
        StreamedPart("c", after(0.1, "<p>c</p>"), fallback="", inside="b"),
    )
    recorder = SendRecorder(page)
    await get(recorder)
    assert [(at, body[:14]) for at, body in bodies(recorder)[1:]] == [
        (300, '<template id="'),
        (300, '<template id="'),
        (300, '<template id="'),
    ]
    assert [body.split('"')[1] for _, body in bodies(recorder)[1:]] == [
        "a-ready",
        "b-ready",
        "c-ready",
    ]


def disconnect_after(seconds: float) -> Receive:
    async def receive() -> dict[str, str]:
        await anyio.sleep(seconds)
        return {"type": "http.disconnect"}

    return receive


async def test_a_client_that_leaves_cancels_nested_parts_too() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    page = nested_page(after(2, OUTER_HTML), after(1, "<p>42</p>"))
    scope = {"type": "http", "method": "GET", "asgi": {"spec_version": "2.4"}}
    started = anyio.current_time()
    await page(scope, disconnect_after(0.15), send)
    assert round((anyio.current_time() - started) * 1000) == 150
    assert sorted(cancelled) == ["<p>42</p>", OUTER_HTML]
    # The shell and the side part went out; the nested part was never sent.
    assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * 2


def test_a_nested_part_must_follow_its_outer_part() -> None:
    with pytest.raises(ValueError, match="part 'inner' is inside 'outer', which is not listed"):
        StreamedPage(
            SHELL,
            StreamedPart("inner", after(0.1, ""), fallback="", inside="outer"),
            StreamedPart("outer", after(0.1, OUTER_HTML), fallback=""),
        )


def test_two_parts_with_one_id_are_refused() -> None:
    with pytest.raises(ValueError, match="two parts have the id 'side'"):
        StreamedPage(
            SHELL,
            StreamedPart("side", after(0.1, ""), fallback=""),
            StreamedPart("side", after(0.1, ""), fallback=""),
        )


async def test_a_nested_part_left_without_a_placeholder_is_cancelled_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The outer part fell back without the placeholder: the response does not wait."""
    failing = after(0.1, "", ServiceUnavailable("outer: 503"))
    page = StreamedPage(
        '<div id="outer">…</div>',
        StreamedPart("outer", failing, fallback="<p>-</p>"),
        # No deadline: without the cancel, the response would wait for it.
        StreamedPart("inner", after(5, "<p>42</p>"), fallback="", inside="outer"),
        StreamedPart("deeper", after(5, "<p>7</p>"), fallback="", inside="inner"),
    )
    recorder = SendRecorder(page)
    started = anyio.current_time()
    with caplog.at_level(logging.WARNING, logger="examples.streaming"):
        await get(recorder)
    assert round((anyio.current_time() - started) * 1000) == 100
    assert recorder.complete
    assert sorted(cancelled) == ["<p>42</p>", "<p>7</p>"]
    assert sorted(caplog.messages[-2:]) == [
        "part 'deeper' dropped: part 'inner' sent no placeholder for it",
        "part 'inner' dropped: part 'outer' sent no placeholder for it",
    ]


async def test_a_nested_part_that_never_ends_is_cancelled_with_its_dropped_outer() -> None:
    async def forever() -> str:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    failing = after(0.1, "", ServiceUnavailable("outer: 503"))
    page = StreamedPage(
        '<div id="outer">…</div>',
        StreamedPart("outer", failing, fallback="<p>-</p>"),
        StreamedPart("inner", forever, fallback="", inside="outer"),
    )
    with anyio.fail_after(10):
        recorder = SendRecorder(page)
        await get(recorder)
    assert recorder.complete and recorder.last_part_ms == 100


async def test_a_nested_part_past_its_deadline_waits_with_its_fallback() -> None:
    page = StreamedPage(
        SHELL,
        StreamedPart("outer", after(0.2, OUTER_HTML), fallback=""),
        StreamedPart(
            "inner", after(1, "<p>42</p>"), fallback="<p>late</p>", inside="outer", deadline=0.05
        ),
    )
    recorder = SendRecorder(page)
    await get(recorder)
    assert bodies(recorder)[1:] == [
        (200, fill("outer", OUTER_HTML)),
        (200, fill("inner", "<p>late</p>")),
    ]


async def test_an_outer_part_that_fails_after_its_nested_part_is_ready_drops_it() -> None:
    failing = after(0.2, "", ServiceUnavailable("outer: 503"))
    recorder = SendRecorder(nested_page(failing, after(0.1, "<p>42</p>")))
    await get(recorder)
    assert bodies(recorder)[1:] == [
        (50, fill("side", "<p>side</p>")),
        (200, fill("outer", "<p>-</p>")),
    ]
    assert recorder.complete


async def test_a_page_cancelled_from_outside_cancels_nested_parts() -> None:
    page = nested_page(after(0.2, OUTER_HTML), after(0.3, "<p>42</p>"))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "asgi": {"spec_version": "2.4"}}
    with anyio.move_on_after(0.25):
        await page(scope, disconnect_after(10), send)
    assert sorted(cancelled) == ["<p>42</p>"]
    assert [m.get("body", b"")[:20] for m in sent[2:]] == [
        fill("side", "<p>side</p>").encode()[:20],
        fill("outer", OUTER_HTML).encode()[:20],
    ]


def test_a_part_inside_an_unknown_part_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no part has the id 'nowhere'"):
        StreamedPage(SHELL, StreamedPart("inner", after(0.1, ""), fallback="", inside="nowhere"))


def test_a_part_inside_itself_is_refused() -> None:
    with pytest.raises(ValueError, match="part 'outer' cannot be inside itself"):
        StreamedPage(SHELL, StreamedPart("outer", after(0.1, ""), fallback="", inside="outer"))


def test_a_nested_part_whose_id_is_also_in_the_shell_is_refused() -> None:
    """Two elements with one id: the script would fill the shell's, not the nested one."""
    with pytest.raises(ValueError, match='the shell has an element with id="side" too'):
        StreamedPage(
            SHELL,
            StreamedPart("outer", after(0.1, OUTER_HTML), fallback=""),
            StreamedPart("side", after(0.1, ""), fallback="", inside="outer"),
        )


async def test_an_attribute_ending_in_id_is_not_a_placeholder() -> None:
    """`grid="inner"` contains the text `id="inner"`, but it is not an id."""
    outer = after(0.1, '<section grid="inner" data-id="inner">user</section>')
    recorder = SendRecorder(nested_page(outer, after(0.2, "<p>42</p>")))
    await get(recorder)
    assert [body.split('"')[1] for _, body in bodies(recorder)[1:]] == [
        "side-ready",
        "outer-ready",
    ]
