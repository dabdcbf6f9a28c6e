"""Page 2.1, Authenticate actions like API routes: its claims come from its own runs.

- Every row of the Performance table (status, total, writes) equals a request
  that a block on the page recorded, found by the block's `title="..."`.
- Every refused request wrote nothing, and only allowed requests wrote.
- When a request fails several checks at once, the status is the one the
  page's precedence says (401, then 403, then 422), in both tabs.
- The FastAPI route answers in the order the page reads from FastAPI's
  source, and the IDOR trap really writes another user's row.

Every value read here is recorded output, which tests/test_docs.py checks
against a run of the block on every clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests import pagecheck
from tests.harness import DOCS
from tests.pagecheck import section, table_rows

PAGE = DOCS / "patterns" / "authenticate-actions.md"

# Each Performance row: the block that recorded it and which of its requests.
TABLE_ROWS = {
    "Action that trusts its caller, forged token (`trusting_action.py`)": (
        "trusting_action.py",
        0,
    ),
    "Checks one after another, valid request (`checks_in_turn.py`)": ("checks_in_turn.py", 0),
    "Checks together, valid request (`checks_together_asyncio.py`)": (
        "checks_together_asyncio.py",
        0,
    ),
    "Checks together, valid request (`checks_together_anyio.py`)": (
        "checks_together_anyio.py",
        0,
    ),
    "Checks together, forged token": ("checks_together_asyncio.py", 1),
    "Checks together, another user's profile": ("checks_together_asyncio.py", 2),
    "Checks together, blank name": ("checks_together_asyncio.py", 3),
    "Renaming one's own post (`rename_post_asyncio.py`)": ("rename_post_asyncio.py", 4),
    "Renaming one's own post (`rename_post_anyio.py`)": ("rename_post_anyio.py", 4),
    "Renaming another user's post, blank title": ("rename_post_asyncio.py", 2),
    "Renaming one's own post, blank title": ("rename_post_asyncio.py", 3),
    "Validation raised in the group, forged token (`validation_cancels_auth.py`)": (
        "validation_cancels_auth.py",
        0,
    ),
    "Auth service down (`checks_fail.py`)": ("checks_fail.py", 0),
    "Validation service down (`checks_fail.py`)": ("checks_fail.py", 1),
    "Auth service hangs, 500 ms deadline (`checks_fail.py`)": ("checks_fail.py", 2),
}
TABS = ["checks_together_asyncio.py", "checks_together_anyio.py"]
POST_TABS = ["rename_post_asyncio.py", "rename_post_anyio.py"]

# "forged token   401  took 50 ms   writes: 0": one request per printed line.
_ROW = re.compile(r"^(?P<case>.+?)\s+(?P<status>\d{3})\s+took (?P<ms>\d+) ms\s+writes: (?P<w>\d+)$")
# "200 writes: 1" (or a bare "422"), completed by the next timeline's total.
_STATUS = re.compile(r"^(?P<status>\d{3})(?: writes: (?P<w>\d+))?$")
_TOTAL = re.compile(r"^total (?P<ms>\d+) ms$")
# "wrong shape, no token        401 Not authenticated": the route's requests.
_ROUTE_ROW = re.compile(r"^(?P<case>.+?)\s{2,}(?P<status>\d{3}) (?P<reason>.+)$")


@dataclass(frozen=True)
class Request:
    case: str | None
    status: int
    total_ms: int
    writes: int | None  # None: the block has no database


def recorded_lines(title: str) -> list[str]:
    """What the block printed, as recorded under its prints, in order."""
    return pagecheck.recorded_lines(PAGE, title)


def recorded_requests(title: str) -> list[Request]:
    """The requests the block recorded, in order."""
    found: list[Request] = []
    pending: re.Match[str] | None = None
    for line in recorded_lines(title):
        if row := _ROW.match(line):
            found.append(Request(row["case"], int(row["status"]), int(row["ms"]), int(row["w"])))
        elif status := _STATUS.match(line):
            pending = status
        elif (total := _TOTAL.match(line)) and pending:
            writes = int(pending["w"]) if pending["w"] is not None else None
            found.append(Request(None, int(pending["status"]), int(total["ms"]), writes))
            pending = None
    assert found, f'{PAGE.name}: block "{title}" recorded no request'
    return found


def by_case(title: str) -> dict[str, Request]:
    return {r.case: r for r in recorded_requests(title) if r.case is not None}


def performance_rows() -> dict[str, list[str]]:
    rows = table_rows(section(PAGE, "## Performance"))[1:]
    return {row[0]: row for row in rows}


def test_every_performance_row_has_a_recorded_source() -> None:
    assert set(performance_rows()) == set(TABLE_ROWS)


@pytest.mark.parametrize("label", list(TABLE_ROWS))
def test_performance_row_is_a_recorded_request(label: str) -> None:
    title, index = TABLE_ROWS[label]
    _, status, total, writes = performance_rows()[label]
    request = recorded_requests(title)[index]
    recorded = (
        str(request.status),
        f"{request.total_ms} ms",
        "–" if request.writes is None else str(request.writes),
    )
    assert (status, total, writes) == recorded, (
        f"docs/patterns/authenticate-actions.md Performance, {label!r}: the table says "
        f"{(status, total, writes)}, the block {title} recorded {recorded}; "
        "copy the recorded figures into the table"
    )


@pytest.mark.parametrize("title", ["trusting_action.py", *TABS, *POST_TABS])
def test_only_allowed_requests_write(title: str) -> None:
    """A refused request writes nothing; the trusting action writes for everyone."""
    for request in recorded_requests(title):
        allowed = request.status == 200
        assert request.writes == (1 if allowed else 0), (title, request)
    if title == "trusting_action.py":
        assert all(r.status == 200 for r in recorded_requests(title))
    else:
        assert any(r.status != 200 for r in recorded_requests(title))


@pytest.mark.parametrize("tabs", [TABS, POST_TABS], ids=lambda tabs: tabs[0])
def test_both_tabs_record_the_same_requests(tabs: list[str]) -> None:
    asyncio_tab, anyio_tab = (recorded_requests(title) for title in tabs)
    assert asyncio_tab == anyio_tab


@pytest.mark.parametrize("title", TABS)
def test_several_failures_get_the_status_of_the_first_check(title: str) -> None:
    """401 before 403 before 422: a combined failure answers like its first check alone."""
    cases = by_case(title)
    single = {
        "forged token": 401,
        "another user's profile": 403,
        "blank name": 422,
    }
    for case, status in single.items():
        assert cases[case].status == status, (title, cases[case])
    assert cases["forged token, blank name"].status == cases["forged token"].status
    assert cases["another user's, blank name"].status == cases["another user's profile"].status
    # Refused at the check that decided, not after the slowest one.
    assert cases["forged token, blank name"].total_ms == cases["forged token"].total_ms


@pytest.mark.parametrize("title", POST_TABS)
def test_the_rows_author_decides_before_the_title(title: str) -> None:
    cases = by_case(title)
    assert cases["forged token"].status == 401
    assert cases["Grace's post"].status == 403
    assert cases["Grace's post, blank title"].status == 403
    assert cases["blank title"].status == 422


def test_a_validation_error_raised_in_the_group_hides_the_401() -> None:
    [request] = recorded_requests("validation_cancels_auth.py")
    assert request.status == 422
    assert "cancelled" in recorded_lines("validation_cancels_auth.py")[1]


def test_failed_checks_refuse_and_write_nothing() -> None:
    statuses = [(r.status, r.writes) for r in recorded_requests("checks_fail.py")]
    assert statuses == [(503, 0), (503, 0), (504, 0)]


def test_fastapi_answers_in_the_order_its_source_says() -> None:
    lines = recorded_lines("route_fastapi.py")
    rows = {
        m["case"]: (int(m["status"]), m["reason"])
        for line in lines
        if (m := _ROUTE_ROW.match(line))
    }
    # 1. JSON is parsed before any dependency: broken JSON beats a missing token.
    assert rows["broken JSON, no token"] == (422, "json_invalid")
    # 2. Dependencies run before the body is validated: a missing token beats a wrong shape.
    assert rows["wrong shape, no token"] == (401, "Not authenticated")
    # 3. The body is validated before the endpoint, where the token is checked.
    assert rows["wrong shape, forged token"] == (422, "model_attributes_type")
    # Then the endpoint's own order.
    assert rows["blank name, forged token"][0] == 401
    assert rows["blank name, Grace's profile"][0] == 403
    assert rows["blank name"][0] == 422
    writes = [line for line in lines if line.startswith("writes: ")]
    # None of the refused requests, nor the outage, wrote; the valid one did.
    assert writes == ["writes: 0", "writes: 0", "writes: 1"]
    assert "503 a check is down, try again" in lines


def test_the_idor_trap_writes_another_users_row() -> None:
    lines = recorded_lines("signed_in_is_not_allowed.py")
    assert lines[0] == "401 Bearer"
    assert "writes: 0" in lines
    assert lines[-1] == "writes: 1, to user 2"
