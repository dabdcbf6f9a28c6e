"""Page 2.4: every figure in the Performance tables is one its blocks printed.

Blocks are found by their `title="..."`; the numbers are read from the output
recorded under each block's prints, so a table cell that drifts from what
the code printed fails here.
"""

from __future__ import annotations

import re

import pytest

from tests.harness import DOCS
from tests.pagecheck import block_titled

PAGE = DOCS / "patterns" / "parallel-data-fetching.md"


def recorded(title: str) -> str:
    """The source of the block titled `title`, recorded output included."""
    return block_titled(PAGE, title).source


def totals(title: str) -> list[int]:
    """Every `total N ms` line a block's timelines printed, in order."""
    found = [int(ms) for ms in re.findall(r"^\s*total (\d+) ms$", recorded(title), re.M)]
    assert found, f"block {title!r} recorded no timeline total"
    return found


def printed(title: str, pattern: str) -> tuple[int, ...]:
    """The numbers captured by `pattern` in the first recorded line matching it."""
    match = re.search(pattern, recorded(title), re.M)
    assert match, f"block {title!r} recorded no line matching {pattern!r}"
    return tuple(int(group) for group in match.groups())


def table(heading: str) -> dict[str, tuple[str, str]]:
    """The rows of the Markdown table whose header row starts with `heading`."""
    lines = PAGE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {heading} |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        label, before, after = (cell.strip() for cell in line.strip("|").split("|"))
        rows[label] = (before, after)
    return rows


def ms(value: int) -> str:
    return f"{value} ms"


PERFORMANCE = "Performance: parts one after another, then together"


def waterfall_rows() -> dict[str, tuple[str, str]]:
    three = printed(PERFORMANCE, r"three parts: (\d+) ms one after another, (\d+) ms together")
    five = printed(PERFORMANCE, r"five widgets: (\d+) ms one after another, (\d+) ms together")
    pairs = {
        "Header, then sidebar": (
            totals("Waterfall: the page waits for its header data")[0],
            totals("Siblings (asyncio)")[0],
        ),
        "Three parts of 100 ms": three,
        "Dashboard, five widgets of 200 ms": five,
        "Shared user, then recommendations, beside a 200 ms widget": (
            totals("Shared fetch awaited at the top")[0],
            totals("Shared fetch handed down (asyncio)")[0],
        ),
        "Nested three deep": (
            totals("Nested three deep: each level waits before the next")[0],
            totals("Flattened: each level starts its fetch and its children together")[0],
        ),
        "Jinja2 template calling three fetches": (
            totals("Jinja2: async calls in the template")[0],
            totals("Jinja2: fetch together, then render")[0],
        ),
        "FastAPI route with two dependencies": (
            totals("FastAPI: two dependencies, one after another")[0],
            totals("FastAPI: one dependency that fetches both together")[0],
        ),
    }
    return {label: (ms(before), ms(after)) for label, (before, after) in pairs.items()}


def test_waterfall_table_matches_the_recorded_runs() -> None:
    assert table("Page") == waterfall_rows()


def test_streaming_table_matches_the_recorded_run() -> None:
    title = "Streaming: each part leaves as soon as it is ready"
    whole, streamed = re.findall(r"first byte (\d+) ms, last part (\d+) ms", recorded(title))
    assert table("Two parts, 100 ms and 200 ms") == {
        "First byte": (ms(int(whole[0])), ms(int(streamed[0]))),
        "Last part": (ms(int(whole[1])), ms(int(streamed[1]))),
    }


def test_the_client_sees_the_streamed_headers_only_at_the_end() -> None:
    """The reason the page measures at the app's `send`, recorded by the same run."""
    title = "Streaming: each part leaves as soon as it is ready"
    (client_ms,) = printed(title, r"the in-process client saw the headers at (\d+) ms")
    _, streamed = re.findall(r"first byte (\d+) ms, last part (\d+) ms", recorded(title))
    assert int(streamed[0]) < client_ms == int(streamed[1])


@pytest.mark.parametrize("tab", ["asyncio", "AnyIO"])
def test_the_shared_user_is_fetched_once_in_both_tabs(tab: str) -> None:
    title = f"Shared fetch handed down ({tab})"
    assert printed(title, r"user fetched (\d+) time\(s\)") == (1,)
    assert totals(title) == [200]


@pytest.mark.parametrize(
    "pair",
    [
        ("Siblings (asyncio)", "Siblings (AnyIO)"),
        ("Layout of parts (asyncio)", "Layout of parts (AnyIO)"),
        ("Shared fetch handed down (asyncio)", "Shared fetch handed down (AnyIO)"),
    ],
)
def test_both_tabs_print_the_same(pair: tuple[str, str]) -> None:
    asyncio_tab, anyio_tab = pair

    def output(title: str) -> list[str]:
        source = recorded(title)
        start = source.index("async def main")
        return [line.strip() for line in source[start:].splitlines() if "ms" in line]

    assert output(asyncio_tab) == output(anyio_tab)


def test_a_client_that_leaves_stops_the_streamed_page_but_not_a_streaming_response() -> None:
    """The 2.4 server run: Starlette's response fetches on, StreamedPage stops at once."""
    source = recorded("Streaming: the client leaves after 50 ms")
    spans = re.findall(r"^\s*widget\(activity\).*?(\d+) ms(.*)$", source, re.M)
    assert spans == [("200", ""), ("50", "  cancelled")]
    assert totals("Streaming: the client leaves after 50 ms") == [200, 50]


def test_a_failing_part_sends_its_fallback_and_the_response_completes() -> None:
    source = recorded("Streaming: a failing part sends its fallback")
    assert "#> status 200, complete: True" in source
    assert "log: part 'header' failed; sent its fallback (ServiceUnavailable)" in source
    assert re.search(r"100 ms .*<header>Hom", source)  # the fallback, when the fetch failed
    assert "incomplete" not in source


def test_the_placeholders_are_filled_one_part_at_a_time() -> None:
    source = recorded("Streaming placeholders, filled as each part arrives")
    screens = re.findall(r"#>\s+(\d+) ms  (.*)$", source, re.M)
    assert screens == [
        ("0", '<div id="header">…</div><div id="activity">Loading…</div>'),
        ("100", '<header>Dashboard</header><div id="activity">Loading…</div>'),
        ("200", "<header>Dashboard</header><section>activity</section>"),
    ]
