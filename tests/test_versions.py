"""The `python=` fence attribute and the version lanes (tests/lanes.py).

The lanes themselves run in `make test-versions`; these tests check what
decides them: which versions a range allows, that a malformed range is
rejected at its fence's line, and what the lane driver reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pytest_examples import CodeExample, find_examples

from tests import lanes
from tests.harness import RUNNING_PYTHON, ExampleError, PythonRange, Settings, clocks_for, relative

SAMPLE = Path(__file__).parent / "samples" / "python_versions.md"


def block(title: str) -> CodeExample:
    (found,) = [
        ex for ex in find_examples(SAMPLE) if ex.prefix_settings()["title"] == title.lower()
    ]
    return found


def fence_line(title: str) -> str:
    for number, line in enumerate(SAMPLE.read_text().splitlines(), start=1):
        if f'title="{title}"' in line:
            return f"{relative(SAMPLE)}:{number}"
    raise AssertionError(title)


@pytest.mark.parametrize(
    ("text", "allowed", "refused"),
    [
        ("3.12+", ["3.12", "3.13", "3.14"], ["3.11"]),
        ("3.11-3.12", ["3.11", "3.12"], ["3.13"]),
        ("3.13", ["3.13"], ["3.12", "3.14"]),
    ],
)
def test_a_range_allows_what_it_says(text: str, allowed: list[str], refused: list[str]) -> None:
    versions = PythonRange.parse(text, "page.md:1")
    assert [v for v in allowed + refused if versions.allows(v)] == allowed
    assert str(versions) == text


@pytest.mark.parametrize("title", ["a malformed range", "older than the project", "an empty range"])
def test_a_bad_range_is_rejected_at_its_fence(title: str) -> None:
    with pytest.raises(ExampleError) as failure:
        Settings.of(block(title))
    message = str(failure.value)
    assert message.startswith(f"{fence_line(title)}: python=")
    assert '"3.12+"' in message  # says what to write instead


def test_a_block_for_another_python_has_no_clock_here() -> None:
    example = block("only a future Python")
    assert clocks_for(example) == []
    assert clocks_for(example, python=None) == ["asyncio", "ties", "real"]
    assert clocks_for(example, python="3.99") == ["asyncio", "ties", "real"]
    assert RUNNING_PYTHON != "3.99"


def test_the_running_python_is_found_as_itself() -> None:
    assert lanes.runs_as(sys.executable, RUNNING_PYTHON)
    assert not lanes.runs_as(sys.executable, "3.99")
    assert not lanes.runs_as("/nonexistent/python3.99", "3.99")


def test_a_lane_reports_pytests_summary_line() -> None:
    output = "....\n=========== 361 passed, 2 skipped in 9.47s ===========\n"
    assert lanes.summary_line(output) == "361 passed, 2 skipped in 9.47s"
    assert lanes.summary_line("") == "no output"


def test_the_lanes_share_the_cores_without_a_worker_more_than_they_have(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lanes.os, "sched_getaffinity", lambda _: {0, 1})
    assert lanes.lane_workers(2) == ["-p", "no:xdist"]
    assert lanes.lane_workers(1) == ["-n", "2"]
    monkeypatch.setattr(lanes.os, "sched_getaffinity", lambda _: set(range(8)))
    assert lanes.lane_workers(2) == ["-n", "4"]
