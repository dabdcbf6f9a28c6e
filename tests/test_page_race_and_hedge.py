"""Page P3, Race and hedging: its claims come from its own runs.

- Every row of the Performance table (latency, calls) equals what a block on
  the page recorded, found by the block's `title="..."`.
- The asyncio and AnyIO tabs of each correct version record the same output.
- The load comparison says what the prose says: racing doubles the calls, a
  hedge at the p95 adds one call in 20 and cuts the slowest read.
- On the real stack, the loser of a hedged GET ran to its end on the server,
  a hedged POST wrote twice, and a route that watches for the client's
  disconnect cancelled its work.

Every value read here is recorded output, which tests/test_docs.py checks
against a run of the block on every clock.
"""

from __future__ import annotations

import re

import anyio
import pytest

from examples.hedge import first_success
from tests import pagecheck
from tests.harness import DOCS
from tests.pagecheck import section, table_rows

PAGE = DOCS / "patterns" / "race-and-hedge.md"

# "price from b: took 40 ms, 2 calls"
_TOOK = re.compile(r"^.+: took (?P<ms>\d+) ms, (?P<calls>\d+) calls?$")
# "price from b, calls: 2", then the timeline's "total 90 ms"
_CALLS = re.compile(r"^.+, calls: (?P<calls>\d+)$")
_TOTAL = re.compile(r"^total (?P<ms>\d+) ms$")
# "race both      p50  40 ms  p95  40 ms  max  40 ms  calls 40"
_LOAD = re.compile(
    r"^(?P<name>.+?)\s+p50\s+(?P<p50>\d+) ms\s+p95\s+(?P<p95>\d+) ms\s+"
    r"max\s+(?P<max>\d+) ms\s+calls (?P<calls>\d+)$"
)


def recorded_lines(title: str) -> list[str]:
    """What the block printed, as recorded under its prints, in order."""
    return pagecheck.recorded_lines(PAGE, title)


def took(title: str) -> tuple[int, int]:
    """(ms, calls) of a block that prints one `...: took N ms, K calls` line."""
    (match,) = [m for line in recorded_lines(title) if (m := _TOOK.match(line))]
    return int(match["ms"]), int(match["calls"])


def hedged_requests(title: str) -> list[tuple[int, int]]:
    """(ms, calls) of each request a hedge block printed, in order."""
    found, calls = [], None
    for line in recorded_lines(title):
        if match := _CALLS.match(line):
            calls = int(match["calls"])
        elif (total := _TOTAL.match(line)) and calls is not None:
            found.append((int(total["ms"]), calls))
            calls = None
    assert found, f'{PAGE.name}: block "{title}" recorded no request'
    return found


def load() -> dict[str, dict[str, int]]:
    """The load block's figures, by strategy."""
    rows = {}
    for line in recorded_lines("hedge_load.py"):
        if match := _LOAD.match(line):
            rows[match["name"]] = {k: int(v) for k, v in match.groupdict().items() if k != "name"}
    assert set(rows) == {"one replica", "race both", "hedge at 50 ms"}, (
        f"{PAGE.name}: hedge_load.py recorded {sorted(rows)}"
    )
    return rows


def expected_rows() -> dict[str, tuple[int, int]]:
    """Each Performance row's (ms, calls), read from the recorded outputs."""
    fast, slow = hedged_requests("hedge_one_request_anyio.py")
    figures = load()
    return {
        "One replica on a slow call (`Before`)": took("Before"),
        "Both replicas, first success (`After (asyncio)`)": took("After (asyncio)"),
        "Both replicas, first success (`After (AnyIO)`)": took("After (AnyIO)"),
        "Hedge, first replica in time (`hedge_one_request_anyio.py`)": fast,
        "Hedge, first replica slow (`hedge_one_request_anyio.py`)": slow,
        "20 reads, one replica, slowest (`hedge_load.py`)": (
            figures["one replica"]["max"],
            figures["one replica"]["calls"],
        ),
        "20 reads, racing both, slowest (`hedge_load.py`)": (
            figures["race both"]["max"],
            figures["race both"]["calls"],
        ),
        "20 reads, hedge at 50 ms, slowest (`hedge_load.py`)": (
            figures["hedge at 50 ms"]["max"],
            figures["hedge at 50 ms"]["calls"],
        ),
    }


def performance_rows() -> dict[str, list[str]]:
    rows = table_rows(section(PAGE, "## Performance"))[1:]
    return {row[0]: row for row in rows}


def test_every_performance_row_has_a_recorded_source() -> None:
    assert set(performance_rows()) == set(expected_rows())


@pytest.mark.parametrize("example", sorted(expected_rows()))
def test_performance_row_equals_the_recorded_run(example: str) -> None:
    ms, calls = expected_rows()[example]
    row = performance_rows()[example]
    assert row[1:] == [f"{ms} ms", str(calls)], (
        f"docs/patterns/race-and-hedge.md, Performance, {example!r}: the table says "
        f"{row[1:]}, the recorded output says {ms} ms and {calls} calls; copy those"
    )


@pytest.mark.parametrize(
    "tabs",
    [
        ("After (asyncio)", "After (AnyIO)"),
        ("first_success_asyncio.py", "first_success_anyio.py"),
        ("hedge_one_request_asyncio.py", "hedge_one_request_anyio.py"),
    ],
)
def test_both_tabs_record_the_same_output(tabs: tuple[str, str]) -> None:
    asyncio_tab, anyio_tab = tabs
    assert recorded_lines(asyncio_tab) == recorded_lines(anyio_tab), (
        f"{PAGE.name}: {asyncio_tab} and {anyio_tab} print different outputs; "
        "the two tabs must show the same behaviour"
    )


def test_racing_doubles_the_calls_and_a_hedge_adds_one_in_twenty() -> None:
    figures = load()
    one, race, hedge = figures["one replica"], figures["race both"], figures["hedge at 50 ms"]
    assert race["calls"] == 2 * one["calls"]
    assert hedge["calls"] == one["calls"] + one["calls"] // 20
    assert hedge["p50"] == one["p50"] == race["p50"]
    assert race["max"] < hedge["max"] < one["max"]


def test_the_short_answer_shows_the_recorded_figures() -> None:
    rows = {row[0]: row[1:] for row in table_rows(section(PAGE, "## The short answer"))[1:]}
    before_ms, before_calls = took("Before")
    after_ms, after_calls = took("After (asyncio)")
    assert rows == {
        "Total": [f"{before_ms} ms", f"{after_ms} ms"],
        "Calls to the replicas": [str(before_calls), str(after_calls)],
    }


def test_the_walk_away_race_leaves_the_loser_running_to_its_end() -> None:
    lines = recorded_lines("race_and_walk_away.py")
    assert lines[0].endswith("still running: 1")
    loser = next(line for line in lines if line.startswith("a.get(price)"))
    assert "cancelled" not in loser and loser.endswith("400 ms")


def test_a_fast_failure_wins_promise_race_but_not_first_success() -> None:
    assert recorded_lines("race_takes_a_failure.py") == [
        "error: replica: 503 Service Unavailable, at 40 ms"
    ]
    assert "price from b, at 400 ms" in recorded_lines("first_success_asyncio.py")


@pytest.mark.parametrize("title", ["first_success_asyncio.py", "first_success_anyio.py"])
def test_with_no_call_the_page_version_raises_the_helpers_value_error(title: str) -> None:
    """Not an empty ExceptionGroup, which Python refuses to build with a ValueError of its own."""
    with pytest.raises(ValueError) as helper:
        anyio.run(first_success)
    expected = f"no call: ValueError: {helper.value}"
    block = pagecheck.block_titled(PAGE, title)
    assert expected in recorded_lines(title), (
        f"{pagecheck.relative(PAGE)}:{block.start_line}: {title} must print {expected!r} "
        "when given no call, as examples/hedge.py raises; check for no call first, "
        "then run make update-examples"
    )


def test_the_page_anyio_version_raises_a_cancellation_nothing_asked_for() -> None:
    """On asyncio, as examples/hedge.py does: not an empty ExceptionGroup."""
    import asyncio

    block = pagecheck.block_titled(PAGE, "first_success_anyio.py")
    program: dict[str, object] = {"__name__": "first_success_anyio"}
    exec(block.source.replace("anyio.run(main)", ""), program)  # definitions only
    page_first_success = program["first_success"]
    assert callable(page_first_success)

    async def awaits_a_cancelled_future() -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        future.cancel()
        return await future

    async def main() -> None:
        with pytest.raises(asyncio.CancelledError):
            await page_first_success(awaits_a_cancelled_future)

    anyio.run(main)


def test_on_the_real_stack_the_server_finishes_the_cancelled_requests() -> None:
    lines = recorded_lines("hedge_over_http.py")
    unwatched, watched = [line for line in lines if line.startswith("a.get(price)")]
    assert "cancelled" not in unwatched, f"{PAGE.name}: hedge_over_http.py: {unwatched}"
    assert "orders written: 2" in lines
    # The route that watches for the disconnect cancels its read on the server.
    assert watched.endswith("cancelled"), f"{PAGE.name}: hedge_over_http.py: {watched}"


def test_the_prose_figures_of_the_load_comparison_are_the_recorded_ones() -> None:
    figures = load()
    one, race, hedge = figures["one replica"], figures["race both"], figures["hedge at 50 ms"]
    numbers = {1: "one", 20: "20"}
    extra_hedge, extra_race = hedge["calls"] - one["calls"], race["calls"] - one["calls"]
    text = " ".join(PAGE.read_text(encoding="utf-8").split())
    sentences = [
        # The short answer.
        f"the hedge brings the slowest from {one['max']} ms to {hedge['max']} ms for "
        f"{numbers.get(extra_hedge, str(extra_hedge))} extra call, where racing both every "
        f"time makes {numbers.get(extra_race, str(extra_race))} extra calls",
        # Under the load block.
        f"the slowest request at {hedge['max']} ms instead of {one['max']}, "
        f"and {hedge['calls']} calls",
        # Under the Performance table.
        f"makes the slowest read {one['max'] / hedge['max']:.1f} times faster for "
        f"{round(100 * extra_hedge / one['calls'])}% more calls",
    ]
    for sentence in sentences:
        assert sentence in text, (
            f"{PAGE.name}: the prose must say {sentence!r}, from what hedge_load.py "
            "recorded; rewrite the sentence from the recorded figures"
        )
