"""The P2 page's Performance table and key claims match what its blocks printed.

Each block is found by its `title="..."`; its recorded output (the `#>` lines
and `\"\"\"` blocks the update command writes) is the source of truth.
"""

from __future__ import annotations

import re

import pytest

from tests import pagecheck
from tests.harness import DOCS
from tests.pagecheck import block_titled, section, table_rows

PAGE = DOCS / "patterns" / "cross-request-caching.md"


def recorded(title: str) -> str:
    """The source of the block with this title, recorded output included."""
    return block_titled(PAGE, title).source


def numbers(pattern: str, title: str) -> tuple[int, ...]:
    match = re.search(pattern, recorded(title))
    assert match, f"{pattern!r} not found in the output of {title!r}"
    return tuple(int(group) for group in match.groups())


def performance_table() -> dict[str, tuple[int, int]]:
    """Scenario -> (queries, ms), from the page's `## Performance` table."""
    rows = {}
    for cells in table_rows(section(PAGE, "## Performance")):
        if len(cells) == 3 and cells[2].endswith(" ms"):
            rows[cells[0]] = (int(cells[1]), int(cells[2].removesuffix(" ms")))
    return rows


def measured() -> dict[str, tuple[int, int]]:
    """The same scenarios, read from the recorded outputs."""
    stampede = numbers(r"#> 50 requests: (\d+) queries, took (\d+) ms", "Before")
    shared = numbers(r"#> 50 requests: (\d+) query, took (\d+) ms", "After (asyncio)")
    stored = numbers(r"#> the next 50 requests: (\d+) queries, (\d+) ms", "The stampede")
    route = numbers(r"#> 5 concurrent GETs: (\d+) query, (\d+) ms", "FastAPI with a shared cache")
    not_kept = numbers(
        r"#> error_ttl=0: \d+ failed, queries: (\d+), (\d+) ms", "A failure, cached or not"
    )
    kept = numbers(
        r"#> error_ttl=5: \d+ failed, queries: (\d+), (\d+) ms", "A failure, cached or not"
    )
    return {
        "50 concurrent requests, TTL cache without single flight": stampede,
        "50 concurrent requests, `SharedCache`": shared,
        "The next 50 requests, value stored": stored,
        "5 concurrent GETs of a FastAPI route": route,
        "Three requests in an outage, `error_ttl=0`": not_kept,
        "Three requests in an outage, `error_ttl=5`": kept,
    }


def test_performance_table_matches_the_recorded_outputs() -> None:
    assert performance_table() == measured(), pagecheck.table_differences(
        PAGE, "Performance", performance_table(), measured()
    )


def test_the_short_answer_table_matches_before_and_after() -> None:
    rows = {cells[0]: cells[1:] for cells in table_rows(section(PAGE, "## The short answer"))}
    before = numbers(r"#> 50 requests: (\d+) queries, took (\d+) ms", "Before")
    after = numbers(r"#> 50 requests: (\d+) query, took (\d+) ms", "After (AnyIO)")
    assert rows["Queries"] == [str(before[0]), str(after[0])]
    assert rows["Total"] == [f"{before[1]} ms", f"{after[1]} ms"]


def test_the_stampede_runs_every_query_in_rounds_of_the_pool() -> None:
    queries, last = numbers(r"#> (\d+) queries, the last ended at (\d+) ms", "The stampede")
    assert (queries, last) == (50, 500)  # 50 queries, 10 connections, 100 ms each


@pytest.mark.parametrize("title", ["One load per key (asyncio)", "One load per key (AnyIO)"])
def test_both_tabs_run_one_query_for_a_hundred_requests(title: str) -> None:
    output = recorded(title)
    assert "#> 100 requests, 1 query, prices seen: {24900}" in output
    # The timeline printed after the first burst has one line: one query.
    assert len(re.findall(r"^ *db\.get_product\(42\) ", output, re.M)) == 1


def test_expiry_reloads_only_after_the_ttl() -> None:
    lines = re.findall(
        r"#> request (\d): product in (\d+) ms", recorded("Expiry on the loop's clock")
    )
    assert lines == [("1", "100"), ("2", "0"), ("3", "0"), ("4", "100"), ("5", "0")]


def test_the_generation_check_keeps_the_stale_price_out() -> None:
    output = recorded("A stale value written after invalidate")
    assert "#> no generation check: price after the write: 249.00" in output
    assert "#> SharedCache:         price after the write: 199.00" in output


def test_a_whole_page_in_the_shared_cache_leaks_and_the_product_does_not() -> None:
    output = recorded("Per-user data leaks through a shared cache")
    leaky, fixed = output.split("product_cached:")
    assert "Grace sees Hello Ada" in leaky
    assert "Grace sees Hello Grace" in fixed


def test_the_route_invalidates_after_the_write() -> None:
    output = recorded("FastAPI with a shared cache")
    assert "'price': 199.0" in output
    assert "#> queries in all: 2" in output


def test_a_waiter_that_gives_up_leaves_the_load_for_the_others() -> None:
    output = recorded("A waiter that gives up")
    assert "impatient: gave up at 50 ms" in output
    assert output.count("patient: Espresso machine") == 2
    assert "#> later request for 43: queries: 0" in output


def test_a_load_that_hangs_times_out_at_fill_timeout() -> None:
    output = recorded("A load that hangs")
    assert "#> timed out at 2000 ms" in output
    assert "#> then: Espresso machine, 2 loads, 2100 ms" in output


# --- On a real database (stack="real" blocks: recorded from real runs) --------------------


def test_postgresql_ran_fifty_queries_without_single_flight_and_one_with_it() -> None:
    counted = re.findall(
        r"#> (TTL only|single flight): 50 requests in \d+ ms, queries run by PostgreSQL: (\d+)$",
        recorded("Fifty requests on PostgreSQL"),
        flags=re.M,
    )
    assert counted == [("TTL only", "50"), ("single flight", "1")]
