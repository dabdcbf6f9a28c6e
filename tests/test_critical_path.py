"""Correct versions have no hidden waterfall.

A correct version (a python block inside an `=== "asyncio"` or `=== "AnyIO"`
tab) must take exactly as long as its longest chain of dependent calls:
`Timeline.critical_path_ms()`, which lets a call start only after the calls
it needs (`services.NEEDS`) have ended. A printed total above that means
something waited that did not have to.

Blocks that cap concurrency on purpose (a semaphore, a capacity limiter, a
pool smaller than the fan-out) are recognised by their source and only need
to stay at or above the critical path.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pytest_examples import CodeExample

from examples import timeline
from tests import faultmatrix
from tests.harness import FAULT_CLOCKS, ExampleError, Settings, clocks_for, run_block

# Source text that means the block limits how many calls run at once.
CAPPED_MARKERS = ("Semaphore", "CapacityLimiter", "pool_size")

_TOTAL = re.compile(r"^\s*(?:#> )?total (\d+) ms\s*$")


def correct_versions() -> list[CodeExample]:
    return [
        example
        for example in faultmatrix.all_examples()
        if faultmatrix.correct_tab(example) and not Settings.of(example).skip
    ]


def is_capped(example: CodeExample) -> bool:
    return any(marker in example.source for marker in CAPPED_MARKERS)


def recorded_totals(example: CodeExample) -> list[int]:
    """Every "total N ms" in the block's recorded output, in order."""
    return [int(match[1]) for line in example.source.splitlines() if (match := _TOTAL.match(line))]


def waterfall_problems(example: CodeExample, clock: str, tmp_path: Path) -> list[str]:
    """Where the block's totals exceed what its calls' dependencies require."""
    try:
        run_block(example, clock, tmp_path)
    except ExampleError as exc:
        pytest.skip(f"the block does not run (tests/test_docs.py reports it): {exc}")
    capped = is_capped(example)
    problems = []
    timelines = [opened for opened in timeline.opened if opened.spans]
    for number, opened in enumerate(timelines, start=1):
        total, best = opened.total_ms, opened.critical_path_ms()
        if total < best:
            problems.append(f"timeline {number}: total {total} ms is below its critical path")
        elif total > best and not capped:
            chain = ", ".join(f"{s.label} {s.start_ms}→{s.end_ms}" for s in opened.spans)
            problems.append(
                f"timeline {number}: total {total} ms, but the longest chain of dependent "
                f"calls is {best} ms: something waited that did not have to ({chain})"
            )
    recorded = recorded_totals(example)
    if recorded and timelines and not capped and recorded[-1] != timelines[-1].critical_path_ms():
        problems.append(
            f"the recorded output says total {recorded[-1]} ms; the longest chain of dependent "
            f"calls in the last timeline is {timelines[-1].critical_path_ms()} ms"
        )
    return problems


RUNS = [
    pytest.param(example, clock, id=f"{example}:{clock}")
    for example in correct_versions()
    for clock in clocks_for(example)
    if clock in FAULT_CLOCKS
]


@pytest.mark.parametrize(("example", "clock"), RUNS)
def test_correct_version_takes_its_critical_path(
    example: CodeExample, clock: str, tmp_path: Path
) -> None:
    problems = waterfall_problems(example, clock, tmp_path)
    assert not problems, f"{example} ({clock} clock):\n" + "\n".join(f"  - {p}" for p in problems)


# --- The check catches a waterfall -------------------------------------------------------


def _tabbed_block(tmp_path: Path, body: str) -> CodeExample:
    code = "\n".join(f"    {line}" if line else "" for line in body.strip().splitlines())
    page = tmp_path / "page.md"
    page.write_text(f'=== "asyncio"\n\n    ```python\n{code}\n    ```\n')
    [example] = faultmatrix.all_examples(tmp_path)
    assert faultmatrix.correct_tab(example) == "asyncio"
    return example


def test_catches_a_waterfall(tmp_path: Path) -> None:
    example = _tabbed_block(
        tmp_path,
        """
import asyncio

from examples.services import fetch_posts, fetch_user
from examples.timeline import Timeline


async def main() -> None:
    with Timeline() as timeline:
        await fetch_user(1)
        await fetch_posts(1)
    print(timeline)


asyncio.run(main())
""",
    )
    [problem] = waterfall_problems(example, "asyncio", tmp_path)
    assert "total 200 ms, but the longest chain of dependent calls is 100 ms" in problem


def test_a_real_dependency_is_not_a_waterfall(tmp_path: Path) -> None:
    example = _tabbed_block(
        tmp_path,
        """
import asyncio

from examples.services import auth, fetch_user_data
from examples.timeline import Timeline


async def main() -> None:
    with Timeline() as timeline:
        session = await auth("session-ada")
        await fetch_user_data(session.user_id)
    print(timeline)


asyncio.run(main())
""",
    )
    assert waterfall_problems(example, "asyncio", tmp_path) == []


def test_blocks_outside_tabs_are_not_correct_versions(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text('=== "asyncio"\n\n    text\n\n```python\nprint("hi")\n```\n')
    [example] = faultmatrix.all_examples(tmp_path)
    assert faultmatrix.correct_tab(example) is None
