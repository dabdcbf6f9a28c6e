"""Page 1.1, Prevent waterfall chains: its numbers come from its own runs.

- Every cell of the page's Performance table equals a total that a block on
  the page recorded (found by the block's `title="..."`), and every speedup is
  computed from those totals.
- The fixed dashboard handler takes exactly its critical path: if it ever
  regressed to a waterfall, its total would exceed the critical path that
  `Timeline.critical_path_ms()` computes from `services.NEEDS`, and the check
  below would fail (the waterfall tests show that it does).
- The server action writes nothing when authentication fails.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from pytest_examples import CodeExample

from examples import timeline
from tests import pagecheck
from tests.harness import DOCS, run_block
from tests.pagecheck import block_titled, section, table_rows

PAGE = DOCS / "patterns" / "prevent-waterfall-chains.md"

# A total as a block prints it: a timeline's last line ("total 150 ms"),
# or a summary line ("5 items in 200 ms", "took 100 ms").
RECORDED_TOTAL = re.compile(r"\b(?:total|items in|took) (\d+) ms\b")

# Each row of the Performance table: the block whose recorded output holds
# its total, which of that block's totals (in order of appearance), and what
# its speedup is measured against: another row's total, or SEQUENTIAL, the
# sum of the latencies of the calls that ran to their end in that same
# recorded timeline (what the same calls take awaited one after another).
SEQUENTIAL = "the same calls, one after another"
TABLE_ROWS = {
    "Dashboard, awaited in turn": ("waterfall.py", 0, "Dashboard, awaited in turn"),
    "Dashboard, coroutine created early, awaited late": (
        "lazy_coroutine.py",
        0,
        "Dashboard, awaited in turn",
    ),
    "Dashboard, asyncio task group": ("fixed_asyncio.py", 0, "Dashboard, awaited in turn"),
    "Dashboard, AnyIO task group": ("fixed_anyio.py", 0, "Dashboard, awaited in turn"),
    "Dashboard, AnyIO `start_soon()`": (
        "fixed_anyio_start_soon.py",
        0,
        "Dashboard, awaited in turn",
    ),
    "Dashboard as a Starlette route": ("route.py", 0, "Dashboard, awaited in turn"),
    "Three independent calls": ("independent_asyncio.py", 0, SEQUENTIAL),
    "Settings page, partial dependencies": ("partial_asyncio.py", 0, SEQUENTIAL),
    "Profile update, valid session": ("server_action_asyncio.py", 0, SEQUENTIAL),
    "Profile update, forged token": ("server_action_asyncio.py", 1, SEQUENTIAL),
    "Five items, awaited in a loop": ("await_in_loop.py", 0, "Five items, awaited in a loop"),
    "Five items, three at a time": ("bounded_asyncio.py", 0, "Five items, awaited in a loop"),
}

# The correct dashboard handlers: each must take exactly its critical path.
FIXED_HANDLERS = ["fixed_asyncio.py", "fixed_anyio.py", "fixed_anyio_start_soon.py"]
# The wrong ones, whose total is longer than their critical path; the lazy
# coroutine block runs the handler twice, and its first run is the waterfall.
WATERFALLS = [("waterfall.py", 0), ("lazy_coroutine.py", 0)]


def block(title: str) -> CodeExample:
    """The one block on the page with this title="..."."""
    return block_titled(PAGE, title)


def recorded_totals(title: str) -> list[int]:
    """The totals recorded under the block's prints, in order."""
    totals = [int(ms) for ms in RECORDED_TOTAL.findall(block(title).source)]
    assert totals, f'block "{title}" has no recorded total'
    return totals


# One call in a recorded timeline: "auth    ████      0 →   50 ms  failed: ...".
TIMELINE_ROW = re.compile(
    r"^\s*(?P<label>\S.*?)\s{2,}[█░ ]*?(?P<start>\d+) →\s+(?P<end>\d+) ms(?:\s+(?P<outcome>\S.*))?$"
)


def recorded_timelines(title: str) -> list[list[tuple[int, int, str]]]:
    """Each timeline recorded under the block: its calls as (start, end, outcome)."""
    timelines: list[list[tuple[int, int, str]]] = [[]]
    for line in block(title).source.splitlines():
        row = TIMELINE_ROW.match(line)
        if row:
            outcome = row["outcome"] or "ok"
            timelines[-1].append((int(row["start"]), int(row["end"]), outcome))
        elif re.match(r"^\s*total \d+ ms$", line):
            timelines.append([])
    return [calls for calls in timelines if calls]


def sequential_total(title: str, index: int) -> int:
    """What the calls that ran to their end take awaited one after another."""
    calls = recorded_timelines(title)[index]
    return sum(end - start for start, end, outcome in calls if outcome != "cancelled")


def performance_table() -> dict[str, tuple[str, str]]:
    """Rows of the `## Performance` table: example name -> (total cell, speedup cell)."""
    rows = {}
    for cells in table_rows(section(PAGE, "## Performance"))[1:]:  # skip the header
        name = re.sub(r"\s*\(`[^`]+`\)$", "", cells[0])  # drop the "(`file.py`)" suffix
        rows[name] = (cells[1], cells[2])
    return rows


def total_of(row: str) -> int:
    title, index, _ = TABLE_ROWS[row]
    return recorded_totals(title)[index]


# --- The Performance table -----------------------------------------------------------


def test_every_table_row_is_checked() -> None:
    assert sorted(performance_table()) == sorted(TABLE_ROWS)


@pytest.mark.parametrize("row", list(TABLE_ROWS))
def test_table_total_is_the_recorded_total(row: str) -> None:
    total_cell, _ = performance_table()[row]
    assert total_cell == f"{total_of(row)} ms", pagecheck.table_differences(
        PAGE, "Performance", {row: total_cell}, {row: f"{total_of(row)} ms"}
    )


def baseline_of(row: str) -> int:
    title, index, baseline = TABLE_ROWS[row]
    if baseline == SEQUENTIAL:
        return sequential_total(title, index)
    return total_of(baseline)


@pytest.mark.parametrize("row", list(TABLE_ROWS))
def test_table_speedup_is_computed_from_recorded_totals(row: str) -> None:
    _, speedup_cell = performance_table()[row]
    wanted = f"{baseline_of(row) / total_of(row):.2f}x"
    assert speedup_cell == wanted, pagecheck.table_differences(
        PAGE, "Performance", {row: speedup_cell}, {row: wanted}
    )


def test_every_row_has_a_speedup() -> None:
    blank = [row for row, (_, speedup) in performance_table().items() if not speedup]
    assert not blank, f"{PAGE.name}: the Performance table has no speedup for {blank}"


def test_sequential_totals_read_the_recorded_timelines() -> None:
    """The waterfall's total is the sum of its calls; a cancelled call counts nothing."""
    assert sequential_total("waterfall.py", 0) == total_of("Dashboard, awaited in turn") == 200
    assert sequential_total("server_action_asyncio.py", 1) == 50  # validation was cancelled


def test_the_headline_numbers() -> None:
    """The figures the page's prose states: 200, 200, 150 ms, and zero writes."""
    assert recorded_totals("waterfall.py") == [200]
    assert recorded_totals("lazy_coroutine.py") == [200, 50]  # valid, then forged token
    assert recorded_totals("fixed_asyncio.py") == recorded_totals("fixed_anyio.py") == [150]
    failure_output = block("server_action_asyncio.py").source.split("forged-token", 1)[1]
    assert "#> writes: 0" in failure_output


# --- No waterfall in the fixed handler -------------------------------------------------


def assert_total_is_critical_path(
    example: CodeExample, clock: str, tmp_path: Path, which: int = -1
) -> int:
    """Run the block; the total of the timeline it opened (the last one, unless
    `which` says otherwise) must equal its critical path. Returns the total."""
    run_block(example, clock, tmp_path)
    ran = timeline.opened[which]
    assert ran.total_ms == ran.critical_path_ms(), (
        f"{example}: took {ran.total_ms} ms where its calls allow "
        f"{ran.critical_path_ms()} ms: something waited that did not have to\n{ran}"
    )
    return ran.total_ms


@pytest.mark.parametrize("title", FIXED_HANDLERS)
def test_fixed_handler_takes_its_critical_path(title: str, tmp_path: Path) -> None:
    total = assert_total_is_critical_path(block(title), "asyncio", tmp_path)
    assert total == recorded_totals(title)[-1] == 150


@pytest.mark.parametrize("title", ["fixed_anyio.py", "fixed_anyio_start_soon.py"])
def test_fixed_anyio_handler_takes_its_critical_path_on_trio(title: str, tmp_path: Path) -> None:
    assert assert_total_is_critical_path(block(title), "trio", tmp_path) == 150


@pytest.mark.parametrize(("title", "which"), WATERFALLS)
def test_the_check_catches_the_pages_waterfalls(title: str, which: int, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="took 200 ms where its calls allow 150 ms"):
        assert_total_is_critical_path(block(title), "asyncio", tmp_path, which)


def test_the_check_catches_a_fixed_handler_that_regresses(tmp_path: Path) -> None:
    """The asyncio fix with one added line that waits for config before auth."""
    fixed = block("fixed_asyncio.py")
    start_config = "config = tg.create_task(fetch_config())  # runs while auth runs\n"
    assert start_config in fixed.source
    regressed = fixed.source.replace(
        start_config, start_config + "        await config  # the regression\n"
    )
    example = dataclasses.replace(fixed, source=regressed)
    with pytest.raises(AssertionError, match="took 200 ms where its calls allow 150 ms"):
        assert_total_is_critical_path(example, "asyncio", tmp_path)


# --- The server action -------------------------------------------------------------------


@pytest.mark.parametrize("title", ["server_action_asyncio.py", "server_action_anyio.py"])
def test_rejected_profile_update_cancels_validation(title: str, tmp_path: Path) -> None:
    run_block(block(title), "asyncio", tmp_path)
    valid, rejected = timeline.opened
    assert [span.service for span in valid.spans].count("db.update_profile") == 1
    outcomes = {span.label: span.outcome for span in rejected.spans}
    assert outcomes == {"auth": "failed: Unauthorized", "validate_profile": "cancelled"}


# --- What the prose says the other blocks show -------------------------------------------


def test_background_writes_survive_a_failed_one_and_the_failure_is_logged() -> None:
    source = block("background_tasks.py").source
    assert "#> second response at 200 ms" in source
    assert "#> shut down at 220 ms" in source  # shutdown waited for the last write
    assert "#> committed: [2]" in source
    assert "background job failed: record the visit of user 1 (ServiceUnavailable)" in source


@pytest.mark.parametrize("title", ["cleanup_fails_asyncio.py", "cleanup_fails_anyio.py"])
def test_a_failing_cleanup_turns_the_timeout_into_an_exception_group(title: str) -> None:
    source = block(title).source
    assert "#> an ExceptionGroup of ['ServiceUnavailable']" in source
    assert "#> a plain TimeoutError" not in source


def test_the_routes_answer_a_malformed_body_with_a_422() -> None:
    starlette = block("route.py").source
    assert len(re.findall(r"#> 422 \{'error': 'Invalid JSON", starlette)) == 1
    assert "#> 422 {'error': 'Input should be an object'}" in starlette
    fastapi = block("route_fastapi.py").source
    assert "#> 422 JSON decode error" in fastapi
    assert "#> 401 " in fastapi and "#> 200 " in fastapi
    assert "#> writes: 1" in fastapi
    # An HTTPException raised inside a task group: a 500, not the 401 it meant.
    assert "#> 500 Internal Server Error" in fastapi
