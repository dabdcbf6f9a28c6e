"""Page 1.2: the Performance table holds the numbers the page's own examples printed.

Each figure is read from the output recorded under a block, found by the
block's title="..." attribute, so a table cell can never drift from a run.
"""

from __future__ import annotations

import re

from tests import pagecheck
from tests.harness import DOCS
from tests.pagecheck import block_titled, section, table_rows

PAGE = DOCS / "patterns" / "parallelize-independent-operations.md"


def block(title: str) -> str:
    """The source (with recorded output) of the block with this title."""
    return block_titled(PAGE, title).source


def totals(title: str) -> list[int]:
    """Every `total N ms` line of the timelines printed by a block, in order."""
    return [int(n) for n in re.findall(r"^ *total (\d+) ms$", block(title), flags=re.M)]


def fan_out(title: str, label: str) -> tuple[int, int]:
    """(total ms, peak concurrency) from a line like `limit 5: 20 items in 400 ms, ...`."""
    match = re.search(
        rf"#> {re.escape(label)}: 20 items in (\d+) ms, peak concurrency (\d+)$",
        block(title),
        flags=re.M,
    )
    assert match, f"{PAGE.name}: block {title!r} printed no {label!r} line"
    return int(match[1]), int(match[2])


def pool_totals() -> dict[int, int]:
    found = re.findall(r"#> pool_size=(\d+): (\d+) ms$", block("Pool size caps the speedup"), re.M)
    return {int(size): int(ms) for size, ms in found}


def performance_table() -> dict[str, list[str]]:
    """Rows of the table under `## Performance`: first cell -> the other cells."""
    rows = table_rows(section(PAGE, "## Performance"))
    return {row[0]: row[1:] for row in rows[1:]}  # skip the header


def row(one_by_one: int, together: int) -> list[str]:
    speedup = round(one_by_one / together, 1)
    return [f"{one_by_one} ms", f"{together} ms", f"{speedup:g}x"]


def test_both_tabs_print_the_same_totals() -> None:
    assert totals("Three calls together (asyncio)") == totals("Three calls together (AnyIO)")
    assert totals("Dashboard queries (asyncio)") == totals("Dashboard queries (AnyIO)")
    assert fan_out("Bounded fan-out (asyncio)", "limit 5") == fan_out(
        "Bounded fan-out (AnyIO)", "limit 5"
    )


def test_the_performance_table_matches_the_recorded_outputs() -> None:
    (three_in_a_row,) = totals("Three calls, one after another")
    (three_together,) = totals("Three calls together (asyncio)")
    five_in_a_row, five_together = totals("Five calls")
    pools = pool_totals()
    (dashboard,) = totals("Dashboard queries (asyncio)")
    assert dashboard == pools[4]
    loop_ms, loop_peak = fan_out("Twenty items: a loop, then no bound", "awaited in a loop")
    unbounded_ms, unbounded_peak = fan_out("Twenty items: a loop, then no bound", "no bound")
    bounded_ms, bounded_peak = fan_out("Bounded fan-out (asyncio)", "limit 5")
    assert loop_peak == 1

    expected = {
        "user, posts, comments (100 ms each)": row(three_in_a_row, three_together),
        "five calls of 100 ms": row(five_in_a_row, five_together),
        "four dashboard queries, pool of 2": row(pools[1], pools[2]),
        "four dashboard queries, pool of 4": row(pools[1], pools[4]),
        f"20 items, limit 5 (peak concurrency {bounded_peak})": row(loop_ms, bounded_ms),
        f"20 items, no bound (peak concurrency {unbounded_peak})": row(loop_ms, unbounded_ms),
    }
    assert performance_table() == expected, pagecheck.table_differences(
        PAGE, "Performance", performance_table(), expected
    )


def test_the_original_figures_hold() -> None:
    """The original guide's 300 vs 100 ms (3x) and 500 vs 100 ms (5x)."""
    assert totals("Three calls, one after another") == [300]
    assert totals("Three calls together (asyncio)") == [100]
    assert totals("Five calls") == [500, 100]


def test_a_rejected_form_writes_nothing() -> None:
    source = block("Form validation, then one write")
    rejected, accepted = source.split("\n    valid = ", 1)
    assert "#> writes: 0" in rejected
    assert totals("Form validation, then one write")[0] == 20
    assert "#> writes: 1" in accepted


# --- What the prose says each block shows ---------------------------------------------


def test_one_failed_api_empties_its_widget_and_no_other() -> None:
    source = block("Three APIs, one client")
    with_outage = source.split('with Timeline() as timeline, outage("news")', 1)[1]
    assert "#> news widget empty: HTTPStatusError" in source
    assert (
        "#> {'weather': {'weather': 'ok'}, 'news': {}, 'stocks': {'stocks': 'ok'}}" in with_outage
    ), "with the news API down, only the news widget may be empty"
    assert totals("Three APIs, one client") == [200]
    assert re.findall(r"#> took (\d+) ms", with_outage) == ["200"]


def test_the_overview_route_fails_fast_on_the_user_and_settles_the_rest() -> None:
    source = block("FastAPI route with defaults")
    stalled, user_down = source.split('outage("user")', 1)
    assert "'missing': ['analytics']" in stalled
    assert totals("FastAPI route with defaults") == [150]  # the optional calls' deadline
    assert "#> ['WARNING user 1: no analytics (TimeoutError)']" in stalled
    assert "#> 503 {'detail': 'user service unavailable'}" in user_down
    assert "#> took 100 ms; posts cancelled at 100 ms" in user_down
    assert "#> ['ERROR user 1: no overview (ExceptionGroup)']" in user_down


def test_a_call_cancelled_elsewhere_is_an_outcome_in_both_forms() -> None:
    source = block("A shared call cancelled elsewhere")
    assert "#> Failed(error=CancelledError())" in source
    assert "#> [CancelledError(''), ['post 1 by 1', 'post 2 by 1']]" in source
    assert totals("A shared call cancelled elsewhere") == [100]  # posts ran to its end


def test_per_call_deadlines_keep_what_arrived() -> None:
    assert "#> ['User', 'list', 'TimeoutError']" in block("Per-call deadlines (asyncio)")
    anyio_tab = block("Per-call deadlines (AnyIO)")
    assert "#> ['Ok', 'Ok', 'Failed']" in anyio_tab
    assert "#> Failed(error=TimeoutError())" in anyio_tab
    assert totals("Per-call deadlines (asyncio)") == totals("Per-call deadlines (AnyIO)") == [250]


# --- On PostgreSQL (stack="real" blocks: recorded from real runs) -------------------------

FRESH = "A fresh AsyncSession shared by four tasks"
HOLDING = "An AsyncSession that holds its connection, shared by four tasks"
PER_TASK = "A session per task"


def query_sleeps_ms(title: str) -> dict[str, int]:
    """Each dashboard query's `pg_sleep(...)` in the block's QUERIES, in ms, in order."""
    found = re.findall(r'"(\w+)": \(?\s*"[^"]*pg_sleep\(([\d.]+)\)', block(title))
    assert len(found) == 4, f"{PAGE.name}: block {title!r} should define four queries"
    return {name: round(float(seconds) * 1000) for name, seconds in found}


def test_a_fresh_shared_session_raises_for_every_query_but_the_first() -> None:
    source = block(FRESH)
    failed = re.findall(r"#> (\w+) failed at \d+ ms$", source, flags=re.M)
    _first, *others = query_sleeps_ms(FRESH)
    assert failed == others
    assert (
        "InvalidRequestError" in source
        and "This session is provisioning a new connection; concurrent operations are not permitted"
        in source
    )


def test_a_session_holding_its_connection_runs_the_queries_one_after_another() -> None:
    source = block(HOLDING)
    done = re.findall(r"#> (\w+) done at (\d+) ms$", source, flags=re.M)
    sleeps = query_sleeps_ms(HOLDING)
    assert [name for name, _ in done] == list(sleeps), "the queries finish in the order asked"
    elapsed = 0
    for name, at_ms in done:
        elapsed += sleeps[name]
        assert int(at_ms) >= elapsed, f"{name} finished before the queries ahead of it could"
    assert re.search(r"#> no error, took \d+ ms$", source, flags=re.M)


def per_task_ms() -> int:
    match = re.search(r"#> took (\d+) ms$", block(PER_TASK), flags=re.M)
    assert match, f"{PAGE.name}: block {PER_TASK!r} printed no 'took N ms'"
    return int(match[1])


def holding_ms() -> int:
    match = re.search(r"#> no error, took (\d+) ms$", block(HOLDING), flags=re.M)
    assert match, f"{PAGE.name}: block {HOLDING!r} printed no total"
    return int(match[1])


def test_a_session_per_task_runs_the_queries_together() -> None:
    sleeps = query_sleeps_ms(PER_TASK)
    assert max(sleeps.values()) <= per_task_ms() < sum(sleeps.values())


def test_asyncpg_refuses_a_second_operation_on_one_connection() -> None:
    source = block("asyncpg: a shared connection, then a pool")
    assert "InterfaceError: cannot perform operation: another operation is in progress" in source
    assert re.search(r"#> pool: Ada Lovelace, \d+ orders, \d+ ms$", source, flags=re.M)


def test_twenty_queries_run_in_rounds_of_the_pool_size() -> None:
    found = re.findall(
        r"#> max_overflow=(\d+): 20 queries, (\d+) connections, (\d+) rounds, \d+ ms$",
        block("Twenty queries against a pool of five"),
        flags=re.M,
    )
    assert [tuple(map(int, row)) for row in found] == [(0, 5, 4), (10, 15, 2)]


def test_holding_a_connection_while_fanning_out_exhausts_the_pool() -> None:
    source = block("Holding a connection while fanning out exhausts the pool")
    assert "QueuePool limit of size 5 overflow 0 reached, connection timed out" in source
    assert re.search(r"#> holding_request, 5 at once: \d+ ms, TimeoutError$", source, flags=re.M)
    assert re.search(r"#> releasing_request, 5 at once: \d+ ms, all served$", source, flags=re.M)


def test_a_session_per_read_sees_two_states_and_one_transaction_one() -> None:
    source = block("A session per read, or one snapshot")
    per_read = re.search(r"#> a session per read: (\d+), then (\d+) orders$", source, re.M)
    snapshot = re.search(
        r"#> one REPEATABLE READ transaction: (\d+), then (\d+) orders$", source, re.M
    )
    assert per_read and snapshot, f"{PAGE.name}: the snapshot block printed no counts"
    assert int(per_read[2]) == int(per_read[1]) + 1  # the order placed between the reads
    assert snapshot[1] == snapshot[2]
