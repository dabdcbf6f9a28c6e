"""Page P1, Results as they arrive: every figure it states is one its blocks printed.

- The short answer's table and both Performance tables equal the recorded
  outputs of the blocks they name (found by `title="..."`).
- Handling results as they arrive gives the same timeline in every tab, and
  the waterfall shapes (await in a loop, `anyio.amap()`) the same as each other.
- The route answers 200 with what it has, and 503 when it has nothing.
- The route over Uvicorn (a real run) answers in the shape the prose says,
  never sooner than the slowest call or the budget it waited for.
- The deadline's claims: `asyncio.wait(timeout=...)` cancelled nothing and
  the block outlived its deadline; the cancel scopes cancelled the slow call
  at the deadline and left nothing running; a failure while iterating cancels
  the other calls in both APIs and keeps what was handled before it.

Every value read here is recorded output, which tests/test_docs.py checks
against a run of the block on every clock.
"""

from __future__ import annotations

import ast
import re

import pytest

from examples.services import LATENCY_MS
from tests.harness import DOCS
from tests.pagecheck import block_titled, section, table_rows

PAGE = DOCS / "patterns" / "results-as-they-arrive.md"
DEADLINE_MS = 250  # the deadline the page's deadline blocks use
SUPPLIERS = {"acme", "globex", "initech"}
ROUTE_BUDGET_MS = 400  # the routes' per-supplier budget


def recorded(title: str) -> str:
    """The source of the block titled `title`, recorded output included."""
    return block_titled(PAGE, title).source


def printed(title: str, pattern: str) -> tuple[str, ...]:
    """The groups captured by `pattern` in the first recorded line matching it."""
    match = re.search(pattern, recorded(title), re.M)
    assert match, f"{PAGE.name}: block {title!r} recorded no line matching {pattern!r}"
    return match.groups()


def totals(title: str) -> list[int]:
    """Every `total N ms` line a block's timelines printed, in order."""
    found = [int(ms) for ms in re.findall(r"^\s*total (\d+) ms$", recorded(title), re.M)]
    assert found, f"{PAGE.name}: block {title!r} recorded no timeline total"
    return found


def timeline(title: str) -> list[str]:
    """The lines of the first timeline a block printed, stripped."""
    source = recorded(title)
    lines = [line.strip() for line in source.splitlines()]
    spans = [line for line in lines if " → " in line or line.startswith("total ")]
    end = next(i for i, line in enumerate(spans) if line.startswith("total "))
    return spans[: end + 1]


def span(title: str, label: str) -> tuple[int, int, str]:
    """Start, end and outcome ("" for ok) of one call in a block's timeline."""
    for line in timeline(title):
        match = re.match(rf"^{re.escape(label)}\s+\S*\s+(\d+) →\s+(\d+) ms\s*(.*)$", line)
        if match:
            return int(match[1]), int(match[2]), match[3]
    raise AssertionError(f"{PAGE.name}: block {title!r} has no span {label!r}")


def first_and_total(title: str) -> tuple[str, str]:
    first, total = printed(title, r"first quote saved at (\d+) ms, took (\d+) ms")
    return f"{first} ms", f"{total} ms"


def kept_list(title: str) -> list[str]:
    """The first printed Python list of a block, as recorded (`#> ['a', 'b']`)."""
    (text,) = printed(title, r"#> (\[.*?\])")
    value = ast.literal_eval(text)
    assert isinstance(value, list)
    return [str(item) for item in value]


def performance() -> dict[str, list[str]]:
    rows = table_rows(section(PAGE, "## Performance"))
    return {row[0]: row[1:] for row in rows if row[0] != "Example"}


def test_the_short_answer_table_is_what_before_and_after_printed() -> None:
    rows = {row[0]: row[1:] for row in table_rows(section(PAGE, "## The short answer"))}
    before = first_and_total("Before")
    after = first_and_total("After (asyncio)")
    assert first_and_total("After (AnyIO)") == after
    assert rows["First quote saved"] == [before[0], after[0]]
    assert rows["Total"] == [before[1], after[1]]


def test_the_arrival_rows_are_what_the_blocks_printed() -> None:
    rows = performance()
    assert rows["`gather()`, then save each (Before)"] == list(first_and_total("Before"))
    for tab in ("asyncio", "AnyIO"):
        label = f"`as_completed()`, save each as it arrives (After, {tab})"
        assert rows[label] == list(first_and_total(f"After ({tab})"))


def test_the_first_answer_rows_are_what_the_blocks_printed() -> None:
    rows = performance()
    title = "break_waits_for_the_rest.py"
    (answered,) = printed(title, r"#> initech answered at (\d+) ms")
    label = f"`break` at the first quote, in an asyncio task group (`{title}`)"
    assert rows[label] == [f"{answered} ms", f"{totals(title)[0]} ms"]
    for title in ("first_answer_asyncio.py", "first_answer_anyio.py"):
        (took,) = printed(title, r"#> initech answered, took (\d+) ms")
        label = f"The first quote wins, the others cancelled (`{title}`)"
        assert rows[label] == [f"{span(title, 'initech(7)')[1]} ms", f"{took} ms"]


def test_the_deadline_rows_are_what_the_blocks_printed() -> None:
    rows = performance()
    (kept,) = printed("wait_timeout.py", r"kept (\[.*?\]), 1 pending")
    assert rows["`asyncio.wait(timeout=0.25)` in a task group (`wait_timeout.py`)"] == [
        str(len(ast.literal_eval(kept))),
        f"{totals('wait_timeout.py')[0]} ms",
    ]
    for title in ("deadline_asyncio.py", "deadline_anyio.py"):
        label = f"250 ms deadline over the fan-out (`{title}`)"
        assert rows[label] == [str(len(kept_list(title))), f"{totals(title)[0]} ms"]
    title = "per_call_deadline_anyio.py"
    quotes = [name for name in kept_list(title) if name in SUPPLIERS]
    label = f"250 ms budget per call, one supplier down (`{title}`)"
    assert rows[label] == [str(len(quotes)), f"{totals(title)[0]} ms"]


def test_the_failure_and_route_rows_are_what_the_blocks_printed() -> None:
    rows = performance()
    for title in ("one_fails_asyncio.py", "one_fails_anyio.py"):
        (saved,) = printed(title, r"#> saved: (\[.*?\])$")
        label = f"One supplier fails while iterating (`{title}`)"
        assert rows[label] == [str(len(ast.literal_eval(saved))), f"{totals(title)[0]} ms"]
    source = recorded("partial_quotes_route.py")
    answers = re.findall(r"#> 200 at (\d+) ms, missing .*\n.*\n\s*#> (\{.*?\}) ", source)
    (full_ms, full), (partial_ms, partial) = answers
    assert rows["FastAPI route, every supplier up (`partial_quotes_route.py`)"] == [
        str(len(ast.literal_eval(full))),
        f"{full_ms} ms",
    ]
    assert rows["FastAPI route, one supplier down, one hanging, 400 ms budget"] == [
        str(len(ast.literal_eval(partial))),
        f"{partial_ms} ms",
    ]


@pytest.mark.parametrize("title", ["as_arrived_async_for.py", "as_arrived_anyio.py"])
def test_every_tab_handles_the_quotes_as_the_asyncio_one_does(title: str) -> None:
    assert timeline(title) == timeline("as_arrived_asyncio.py")


def test_each_save_starts_when_its_quote_arrives() -> None:
    for supplier in ("acme", "globex", "initech"):
        _, arrived, _ = span("as_arrived_asyncio.py", f"{supplier}(7)")
        started, _, _ = span("as_arrived_asyncio.py", f"db.save_quote({supplier})")
        assert started == arrived


def test_await_in_a_loop_and_amap_are_the_same_waterfall() -> None:
    assert timeline("amap_in_order.py") == timeline("await_in_order.py")
    assert kept_list("amap_in_order.py") == ["acme", "globex", "initech"]  # argument order
    _, initech_arrived, _ = span("await_in_order.py", "initech(7)")
    saved, _, _ = span("await_in_order.py", "db.save_quote(initech)")
    assert saved > initech_arrived


def test_asyncio_wait_cancelled_nothing_and_outlived_its_deadline() -> None:
    _, end, outcome = span("wait_timeout.py", "acme(7)")
    assert outcome == ""  # it ran to its end: nobody cancelled it
    assert totals("wait_timeout.py")[0] == end > DEADLINE_MS


@pytest.mark.parametrize(
    "title", ["deadline_asyncio.py", "deadline_anyio.py", "hangs_asyncio.py", "hangs_anyio.py"]
)
def test_the_deadline_cancels_the_slow_call_and_keeps_the_rest(title: str) -> None:
    assert span(title, "acme(7)") == (0, DEADLINE_MS, "cancelled")
    assert totals(title)[0] == DEADLINE_MS
    assert sorted(kept_list(title)) == ["globex", "initech"]
    if title.startswith("deadline_"):
        assert "#> still running: []" in recorded(title)


@pytest.mark.parametrize("title", ["one_fails_asyncio.py", "one_fails_anyio.py"])
def test_a_failure_cancels_the_others_and_keeps_what_was_handled(title: str) -> None:
    _, failed_at, outcome = span(title, "globex(7)")
    assert outcome == "failed: ServiceUnavailable"
    assert span(title, "acme(7)") == (0, failed_at, "cancelled")
    assert "#> saved: [{'initech': 2047}]" in recorded(title)


def test_without_a_group_the_others_run_on_until_cancelled_by_hand() -> None:
    assert "still running: ['acme(7)']" in recorded("one_fails_no_group.py")


def test_the_route_answers_at_its_budget_with_what_it_has() -> None:
    source = recorded("partial_quotes_route.py")
    answers = re.findall(r"#> (\d{3}) at (\d+) ms, missing (\[.*?\])", source)
    assert answers == [("200", "300", "[]"), ("200", "400", "['acme', 'globex']")]
    assert "#> {'initech': 2047} False" in source
    # With no quote at all the route has nothing to answer with: 503, every supplier named.
    assert "#> 503 ['acme', 'globex', 'initech']" in source


def test_over_uvicorn_the_route_answers_no_sooner_than_its_calls_allow() -> None:
    """A real run: no exact figure, but the shape the prose describes, above floors
    taken from the latency table and the route's budget."""
    source = recorded("partial_quotes_over_uvicorn.py")
    answers = re.findall(r"#> (\d{3}) in (\d+) ms, missing (\[.*?\])", source)
    assert [(status, missing) for status, _, missing in answers] == [
        ("200", "[]"),
        ("200", "['acme']"),
    ], f"{PAGE.name}: the real-server block's recorded answers changed; re-record or fix it"
    complete_ms, partial_ms = (int(ms) for _, ms, _ in answers)
    assert complete_ms >= LATENCY_MS["quote.acme"]
    assert partial_ms >= ROUTE_BUDGET_MS


def test_break_leaves_the_loop_but_the_asyncio_group_waits_for_the_rest() -> None:
    (answered,) = printed("break_waits_for_the_rest.py", r"#> initech answered at (\d+) ms")
    _, acme_end, acme_outcome = span("break_waits_for_the_rest.py", "acme(7)")
    assert acme_outcome == ""  # nobody cancelled it
    assert totals("break_waits_for_the_rest.py")[0] == acme_end > int(answered)


@pytest.mark.parametrize("title", ["first_answer_asyncio.py", "first_answer_anyio.py"])
def test_the_first_answer_ends_the_fan_out_and_cancels_the_rest(title: str) -> None:
    _, answered, outcome = span(title, "initech(7)")
    assert outcome == ""
    for slower in ("acme(7)", "globex(7)"):
        assert span(title, slower) == (0, answered, "cancelled")
    assert totals(title)[0] == answered
    assert f"#> initech answered, took {answered} ms" in recorded(title)


def test_the_home_page_rows_are_what_the_blocks_printed() -> None:
    """Each P1 row of the home page's Results table, held to the block it summarises
    (tests/test_site.py only checks that each figure is somewhere in the Performance table)."""
    rows = {
        row[1]: row[2:]
        for row in table_rows(section(DOCS / "index.md", "## Results"))
        if "results-as-they-arrive.md" in row[0]
    }
    assert rows == {
        "three quotes, each saved: first one saved": [
            first_and_total("Before")[0],
            first_and_total("After (asyncio)")[0],
        ],
        "250 ms deadline on three quotes, the slowest 300 ms": [
            f"{totals('wait_timeout.py')[0]} ms",
            f"{totals('deadline_asyncio.py')[0]} ms",
        ],
    }, (
        f"docs/index.md:{results_line()}: the P1 rows of the Results table differ from "
        "what the page's blocks recorded; copy the figures from the page's Performance table"
    )


def results_line() -> int:
    """The line of the home page's `## Results` heading."""
    lines = (DOCS / "index.md").read_text().splitlines()
    return lines.index("## Results") + 1
