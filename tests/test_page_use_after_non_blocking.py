"""Page 2.6, Work after the response: its claims come from its own runs.

- Every row of the Performance table (response time, side effects done)
  equals what a block on the page recorded, found by the block's title, and
  the home page's row for 2.6 equals the short answer's figures.
- The traps say what their recorded output shows: BackgroundTasks run one
  after another and a failure skips the rest; a failing background task is
  logged by Uvicorn without the request while the runner logs it with its
  context; it closes the connection under the next request; shutdown waits
  for background tasks, then drains the runner and cancels what outlives
  its deadline.

Every value read here is recorded output, which tests/test_docs.py checks
against a run of the block on every clock (real-stack blocks on the real
clock, within the tolerance docs/testing.md describes).
"""

from __future__ import annotations

import re

from examples.services import LATENCY_MS
from tests import pagecheck
from tests.harness import DOCS
from tests.pagecheck import section, table_differences, table_rows

PAGE = DOCS / "patterns" / "use-after-non-blocking.md"
INDEX = DOCS / "index.md"

_RESPONDED = re.compile(r"^(?:responded|\d{3}) after (?P<ms>\d+) ms$")
_TOTAL = re.compile(r"^total (?P<ms>\d+) ms$")
_ROUTE = re.compile(r"^(?P<path>/\S+)\s+(?P<response>\d+) ms\s+(?P<done>\d+) ms$")


def recorded_lines(title: str) -> list[str]:
    """What the block printed, as recorded under its prints, in order."""
    return pagecheck.recorded_lines(PAGE, title)


def runs(title: str) -> list[tuple[str, str]]:
    """(response, side effects done) per measured run of an in-process block.

    The response is the printed "... after N ms"; the side effects are done
    at the timeline's total printed after it, or at the response when the
    block prints no timeline for that run.
    """
    found: list[tuple[str, str]] = []
    response: str | None = None
    for line in recorded_lines(title):
        if match := _RESPONDED.match(line):
            if response is not None:
                found.append((response, response))
            response = f"{match['ms']} ms"
        elif (match := _TOTAL.match(line)) and response is not None:
            found.append((response, f"{match['ms']} ms"))
            response = None
    if response is not None:
        found.append((response, response))
    assert found, f'{PAGE.name}: block "{title}" recorded no response time'
    return found


def uvicorn_routes() -> dict[str, tuple[str, str]]:
    lines = recorded_lines("response_time_over_uvicorn.py")
    found = {
        m["path"]: (f"{m['response']} ms", f"{m['done']} ms")
        for line in lines
        if (m := _ROUTE.match(line))
    }
    assert set(found) == {"/inline/1", "/background/1", "/after/1"}, lines
    return found


def expected_rows() -> dict[str, tuple[str, str]]:
    routes = uvicorn_routes()
    return {
        "Side effects awaited inline (`Before`)": runs("Before")[0],
        "Started in the application's group (`After (asyncio)`)": runs("After (asyncio)")[0],
        "Started in the application's group (`After (AnyIO)`)": runs("After (AnyIO)")[0],
        "FastAPI route, awaited inline (`side_effects_inline.py`)": runs("side_effects_inline.py")[
            0
        ],
        "FastAPI route, awaited together (`side_effects_inline.py`)": runs(
            "side_effects_inline.py"
        )[1],
        "`BackgroundTasks`, in-process client (`background_tasks_in_process.py`)": runs(
            "background_tasks_in_process.py"
        )[0],
        "Over Uvicorn, awaited inline (`response_time_over_uvicorn.py`)": routes["/inline/1"],
        "Over Uvicorn, `BackgroundTasks`": routes["/background/1"],
        "Over Uvicorn, the runner (`AfterResponse`)": routes["/after/1"],
    }


def test_performance_table_is_what_the_blocks_recorded() -> None:
    rows = {row[0]: (row[1], row[2]) for row in table_rows(section(PAGE, "## Performance"))[1:]}
    expected = expected_rows()
    assert rows == expected, table_differences(PAGE, "Performance", rows, expected)


def test_the_short_answer_and_the_home_page_say_the_same() -> None:
    before, after = runs("Before")[0], runs("After (asyncio)")[0]
    summary = {
        row[0]: tuple(row[1:]) for row in table_rows(section(PAGE, "## The short answer"))[1:]
    }
    expected = {
        "Response": (before[0], after[0]),
        "Every side effect done": (before[1], after[1]),
    }
    assert summary == expected, table_differences(PAGE, "The short answer", summary, expected)
    home = {
        row[0]: tuple(row[2:])
        for row in table_rows(section(INDEX, "## Results"))
        if "use-after" in row[0]
    }
    assert home, (
        f"{INDEX.relative_to(DOCS.parent)}: the Results table has no row linking "
        "patterns/use-after-non-blocking.md; add one with the short answer's figures"
    )
    wanted = {label: (before[0], after[0]) for label in home}
    assert home == wanted, table_differences(INDEX, "Results", home, wanted)


def ms(figure: str) -> int:
    return int(figure.removesuffix(" ms"))


def test_moving_side_effects_out_shortens_the_response_not_the_work() -> None:
    (before_response, before_done), (after_response, after_done) = (
        runs("Before")[0],
        runs("After (AnyIO)")[0],
    )
    assert ms(after_response) < ms(before_response)
    assert ms(after_response) < ms(after_done) <= ms(before_done)
    routes = {path: tuple(map(ms, pair)) for path, pair in uvicorn_routes().items()}
    # Over a socket, both ways of deferring answer before their side effects end.
    for path in ("/background/1", "/after/1"):
        response, done = routes[path]
        assert response < done, f"{path}: the response waited for its side effects"
    # Floors from the latency table: no figure beats the calls it waited for.
    write = LATENCY_MS["db.update_profile"]
    effects = [LATENCY_MS[name] for name in ("audit_record", "analytics_event", "email")]
    assert routes["/inline/1"][0] >= write + sum(effects)
    assert routes["/background/1"][1] >= write + sum(effects)  # one after another
    assert routes["/after/1"][1] >= write + max(effects)  # together
    assert routes["/after/1"][1] < routes["/background/1"][1]
    for path in routes:
        assert routes[path][0] >= write


def test_background_tasks_stop_at_the_first_failure() -> None:
    lines = recorded_lines("background_tasks_in_process.py")
    failed_run = lines[lines.index("200 {'success': True}") :]
    labels = [line.split()[0] for line in failed_run if "→" in line]
    assert labels == ["db.update_profile(1)", "audit_record(1)"], failed_run
    assert any("failed: ServiceUnavailable" in line for line in failed_run)


def test_a_background_failure_is_logged_without_the_request_and_the_runner_with_it() -> None:
    lines = recorded_lines("failure_over_uvicorn.py")
    assert "/background/1 200 {'success': True}" in lines
    assert "/after/1 200 {'success': True}" in lines
    assert "uvicorn.error ERROR: Exception in ASGI application" in lines
    assert "exception handler: ServiceUnavailable in /background/1" in lines
    runner = [line for line in lines if line.startswith("after_response ERROR")]
    assert len(runner) == 1 and "path=/after/1" in runner[0] and "request_id=r-8" in runner[0]
    background = lines[lines.index("/background/1") : lines.index("/after/1")]
    assert not any("email" in line or "analytics" in line for line in background), background
    after = lines[lines.index("/after/1") :]
    assert "email(1)             ok" in after and "analytics_event(1)   ok" in after


def test_a_failing_background_task_closes_the_connection_under_the_next_request() -> None:
    lines = recorded_lines("failure_closes_the_connection.py")
    assert lines == [
        "PUT /background/1 200",
        "GET /dashboard RemoteProtocolError",
        "Server disconnected without sending a response.",
        "GET /dashboard again 200",
    ]


def test_shutdown_drains_background_tasks_then_the_runner_within_its_deadline() -> None:
    lines = recorded_lines("shutdown_over_uvicorn.py")
    waiting = "uvicorn.error: Waiting for background tasks to complete. (CTRL+C to force quit)"
    lifespan = "uvicorn.error: Waiting for application shutdown."
    cancelled = (
        "after_response: work after the response cancelled at shutdown: track_event (path=/after/1)"
    )
    assert lines.index(waiting) < lines.index(lifespan) < lines.index(cancelled)
    background = lines[lines.index("/background/1", 2) :]
    assert background[1:] and all(" ok" in line for line in background[1:]), background
    after = lines[lines.index("/after/1", 2) : lines.index("/background/1", 2)]
    assert any(line.startswith("analytics_event(1)   cancelled") for line in after), after
    drained = next(line for line in lines if line.startswith("the lifespan shutdown drained"))
    # The runner waited for its whole deadline (500 ms) before it cancelled;
    # that it then stopped is the cancelled line above, not a time budget.
    assert int(drained.split()[-2]) >= 500


def test_the_runner_cancels_only_what_outlived_its_deadline() -> None:
    lines = recorded_lines("runner_deadline.py")
    assert "1 1 ['track_event']" in lines
    assert any(line.startswith("analytics_event(1)") and "cancelled" in line for line in lines)
    assert "total 620 ms" in lines


def test_background_tasks_of_an_endpoint_that_raises_are_dropped() -> None:
    lines = recorded_lines("endpoint_raises.py")
    assert [line.split()[:2] for line in lines[:2]] == [
        ["/background/1", "422"],
        ["/after/1", "422"],
    ]
    assert lines[-1] == "attempts audited: ['/after']"
