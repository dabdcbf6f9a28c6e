"""The 2.5 page's Performance table and key claims match what its blocks printed.

Each block is found by its `title="..."`; its recorded output (the `#>` lines
and `\"\"\"` blocks the update command writes) is the source of truth.
"""

from __future__ import annotations

import re

import pytest

from tests import pagecheck
from tests.harness import DOCS
from tests.pagecheck import block_titled, section, table_rows

PAGE = DOCS / "patterns" / "per-request-deduplication.md"


def recorded(title: str) -> str:
    """The source of the block with this title, recorded output included."""
    return block_titled(PAGE, title).source


def charts(title: str) -> list[tuple[list[str], int]]:
    """Each printed timeline in the block: its span lines and its total in ms."""
    found = []
    for chunk in recorded(title).split('"""')[1::2]:
        lines = [line.strip() for line in chunk.strip().splitlines()]
        total = re.fullmatch(r"total (\d+) ms", lines[-1]) if lines else None
        if total:
            found.append((lines[:-1], int(total[1])))
    return found


def number(pattern: str, title: str) -> int:
    match = re.search(pattern, recorded(title))
    assert match, f"{pattern!r} not found in the output of {title!r}"
    return int(match[1])


def performance_table() -> dict[str, tuple[int, int]]:
    """Scenario -> (queries, ms), from the page's `## Performance` table."""
    rows = {}
    for cells in table_rows(section(PAGE, "## Performance")):
        if len(cells) == 3 and cells[2].endswith(" ms"):
            rows[cells[0]] = (int(cells[1]), int(cells[2].removesuffix(" ms")))
    return rows


def measured() -> dict[str, tuple[int, int]]:
    """The same scenarios, read from the recorded outputs."""
    (one_by_one, one_by_one_ms), (together, together_ms) = charts("Three parts, three queries")
    [(cached, cached_ms)] = charts("One query per request (asyncio)")
    [(counts, counts_ms)] = charts("Expensive aggregate")
    [(reads, reads_ms)] = charts("File by slug")
    return {
        "Three parts one after another, no cache": (len(one_by_one), one_by_one_ms),
        "Three parts together, no cache": (len(together), together_ms),
        "Three parts with the request cache": (len(cached), cached_ms),
        "Aggregate from three counts, first part": (len(counts), counts_ms),
        "Aggregate, every later part": (
            number(r"dashboard: \d+ ms, (\d+) queries", "Expensive aggregate"),
            number(r"dashboard: (\d+) ms", "Expensive aggregate"),
        ),
        "Post file read by three parts": (len(reads), reads_ms),
        "Current user, signed in (one `auth` call, then the query)": (
            number(r"session-ada: .*queries: (\d+)", "Current user"),
            number(r"session-ada: .*, (\d+) ms", "Current user"),
        ),
        "The same page requested again (Starlette)": (
            number(r"second request: (\d+) query", "Starlette with the middleware"),
            number(r"second request: \d+ query, (\d+) ms", "Starlette with the middleware"),
        ),
    }


def test_performance_table_matches_the_recorded_outputs() -> None:
    assert performance_table() == measured(), pagecheck.table_differences(
        PAGE, "Performance", performance_table(), measured()
    )


@pytest.mark.parametrize(
    "title", ["One query per request (asyncio)", "One query per request (AnyIO)"]
)
def test_both_tabs_make_one_query_in_the_time_of_one(title: str) -> None:
    [(spans, total)] = charts(title)
    assert len(spans) == 1 and spans[0].startswith("db.get_user(1)")
    assert total == 100
    assert "#> 1 query for one user" in recorded(title)


def test_the_incorrect_version_makes_three_queries() -> None:
    assert "#> 3 queries for one user" in recorded("Three parts, three queries")


def test_lru_cache_on_async_def_fails_on_the_second_await() -> None:
    output = recorded("functools.lru_cache on async def")
    assert "#> second call: RuntimeError: cannot reuse already awaited coroutine" in output


def test_process_wide_caches_leak_and_the_request_cache_does_not() -> None:
    output = recorded("A process-wide cache leaks")
    assert "#> alru_cache:        Ada's request got Ada, Grace's request got Ada" in output
    assert "#> anyio lru_cache:   Ada's request got Ada, Grace's request got Ada" in output
    assert "#> request_cached:    Ada's request got Ada, Grace's request got Grace" in output


def test_argument_keys() -> None:
    output = recorded("Arguments as cache keys")
    assert "argument 'query' is a dict" in output
    assert "argument 'query' is a UserQuery" in output
    assert "#> plain object, 3 calls: 3 queries" in output
    assert "#> frozen dataclass, 3 calls: 1 query" in output


def test_hits_and_misses_are_printed_in_order() -> None:
    output = recorded("Hits and misses")
    lines = re.findall(r"#> DEBUG examples\.request_cache: (.*)", output)
    assert lines == ["miss get_user(123)", "hit get_user(123)", "miss get_user(456)"]


def test_a_cached_call_reads_the_request_context_not_a_parts() -> None:
    output = recorded("What a cached call reads from the context")
    assert "header saw: request r-17, part -" in output
    assert "menu saw:   request r-17, part -" in output


def test_invalidate_makes_the_read_after_a_write_query_again() -> None:
    output = recorded("Invalidate after a write")
    assert "#> without invalidate: get_profile(1), update_profile(1)\n" in output
    assert "#> with invalidate:    get_profile(1), update_profile(1), get_profile(1)" in output


def test_a_long_stream_queries_once_per_message() -> None:
    output = recorded("A scope per message in a long stream")
    assert output.count("#> 'data: Ada <ada@example.com>\\n\\n'") == 3
    assert "#> 3 queries for 3 messages" in output


def test_a_cycle_is_named() -> None:
    output = recorded("A cycle of cached calls")
    assert "#> cycle of cached calls: user_card(1) -> card_width(1) -> user_card(1)" in output


def test_a_failure_reaches_every_waiter_and_is_retried() -> None:
    output = recorded("A failure reaches every waiter")
    assert "#> 3 parts: {'failed: db.get_user: 503 Service Unavailable'}" in output
    assert "#> queries: failed: ServiceUnavailable, ok; total 200 ms" in output


# --- On a real database (stack="real" blocks: recorded from real runs) --------------------


def test_postgresql_ran_three_queries_without_the_cache_and_one_with_it() -> None:
    counted = re.findall(
        r"#> (no cache|request cache): \d+ ms, queries run by PostgreSQL: (\d+)$",
        recorded("Three parts on PostgreSQL"),
        flags=re.M,
    )
    assert counted == [("no cache", "3"), ("request cache", "1")]


def test_deduplication_and_batching_cut_different_queries() -> None:
    source = recorded("N+1, deduplication and batching on PostgreSQL")
    counted = dict(
        re.findall(r"#> ([\w+]+): 20 posts in \d+ ms, author queries: (\d+)$", source, re.M)
    )
    # 20 posts by 10 different authors (examples/postgres.py seeds them).
    assert counted == {"N+1": "20", "deduplicated": "10", "batched": "1"}
