"""The harness catches what it promises to catch, and says where.

Each sample page in tests/samples/ breaks one rule. Every failure message
must start with the sample's path and the line at fault.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_examples import CodeExample, find_examples

from tests import pagecheck
from tests.harness import (
    ExampleError,
    check_block,
    check_format,
    check_within_tolerance,
    clocks_for,
    relative,
    ruff_check,
    run_block,
)

SAMPLES = Path(__file__).parent / "samples"


def only_block(name: str) -> CodeExample:
    (example,) = find_examples(SAMPLES / name)
    return example


def line_of(name: str, text: str) -> int:
    """1-based line number of the first line of a sample containing `text`."""
    for number, line in enumerate((SAMPLES / name).read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {name}")


def where(name: str, text: str) -> str:
    return f"{relative(SAMPLES / name)}:{line_of(name, text)}"


def run_and_check(name: str, clock: str, tmp_path: Path) -> None:
    check_block(only_block(name), clock, tmp_path)


def test_wrong_recorded_output_fails_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("wrong_output.md", "asyncio", tmp_path)
    message = str(failure.value)
    assert message.startswith(where("wrong_output.md", "#> took 90 ms"))
    assert "-    #> took 90 ms" in message
    assert "+    #> took 100 ms" in message


def test_time_sleep_on_the_loop_fails_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("blocking_sleep.md", "asyncio", tmp_path)
    message = str(failure.value)
    assert message.startswith(where("blocking_sleep.md", "MARKER"))
    assert "time.sleep(0.1) blocks the event loop" in message


def test_a_busy_loop_passes_the_virtual_clock_but_not_the_real_one(tmp_path: Path) -> None:
    """A virtual clock does not see CPU time; the real-clock run must."""
    run_and_check("busy_loop.md", "asyncio", tmp_path)
    with pytest.raises(ExampleError) as failure:
        run_and_check("busy_loop.md", "real", tmp_path)
    message = str(failure.value)
    assert message.startswith(f"{relative(SAMPLES / 'busy_loop.md')}:")
    assert "blocking call" in message or "recorded output says 50 ms" in message


def test_never_awaited_coroutine_fails(tmp_path: Path) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("never_awaited.md", "asyncio", tmp_path)
    message = str(failure.value)
    assert message.startswith(f"{relative(SAMPLES / 'never_awaited.md')}:4:")
    assert "coroutine 'fetch_config' was never awaited" in message


def test_pending_task_fails(tmp_path: Path) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("pending_task.md", "asyncio", tmp_path)
    assert "task left pending when main() returned" in str(failure.value)
    assert "fetch_config" in str(failure.value)


def test_never_retrieved_task_exception_fails(tmp_path: Path) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("never_retrieved.md", "asyncio", tmp_path)
    assert "Task exception was never retrieved" in str(failure.value)
    assert "Unauthorized" in str(failure.value)


def test_a_promised_warning_must_appear(tmp_path: Path) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("missing_warning.md", "asyncio", tmp_path)
    assert 'expect_warning="never awaited" but no such warning' in str(failure.value)


def test_a_block_that_raises_is_reported_at_the_markdown_line(tmp_path: Path) -> None:
    example = CodeExample.create(
        "import asyncio\n\n\nasync def main():\n    raise ValueError('boom')\n\n\n"
        "asyncio.run(main())\n",
        path=SAMPLES / "inline.md",
        start_line=10,
    )
    with pytest.raises(ExampleError) as failure:
        run_block(example, "asyncio", tmp_path)
    assert str(failure.value).startswith(f"{relative(SAMPLES / 'inline.md')}:15: the block raised")
    assert isinstance(failure.value.raised, ValueError)


def test_real_clock_tolerance() -> None:
    recorded = "print(timeline)\n#> took 150 ms\n"
    example = CodeExample.create(recorded, path=SAMPLES / "inline.md", start_line=0)
    for real_ms in (148, 150, 225):  # within [150 - 2, 1.3 * 150 + 30]
        assert check_within_tolerance(example, recorded.replace("150", str(real_ms))) == [
            (150, real_ms)
        ]
    for real_ms in (147, 226):
        with pytest.raises(ExampleError, match=f"printed {real_ms} ms"):
            check_within_tolerance(example, recorded.replace("150", str(real_ms)))


def test_broken_links_and_anchors_fail_at_their_lines(built_site: Path) -> None:
    problems = pagecheck.link_problems(SAMPLES / "broken_links.md", built_site)
    assert problems == [
        f"{where('broken_links.md', 'nowhere.md')}: link to '../../docs/nowhere.md': "
        "no such file docs/nowhere.md",
        f"{where('broken_links.md', 'no-such-heading')}: link to "
        "'../../docs/index.md#no-such-heading': docs/index.md has no #no-such-heading",
    ]


def test_fences_the_collector_would_miss_fail_at_their_lines() -> None:
    name = "hidden_fences.md"
    problems = pagecheck.fence_problems(SAMPLES / name)
    assert [p.split(": ")[0] for p in problems] == [
        where(name, "~~~python"),
        where(name, "````python"),
        where(name, "```pyhton3x"),
        where(name, "```pycon"),
        where(name, 'title="plain.py"'),
    ]
    assert "skips ~~~ fences" in problems[0]
    assert "4-backtick" in problems[1]
    assert "unknown fence language 'pyhton3x'" in problems[2]
    assert "must use the attribute-list form" in problems[4]


def test_a_complete_pattern_page_passes() -> None:
    assert pagecheck.pattern_problems(SAMPLES / "good_pattern.md") == []


def test_an_incomplete_pattern_page_says_what_is_missing() -> None:
    problems = pagecheck.pattern_problems(SAMPLES / "bad_pattern.md")
    name = relative(SAMPLES / "bad_pattern.md")
    assert problems == [
        f"{name}:1: the page must start with its numbered title, like "
        "`# 1.1 Prevent waterfall chains`",
        f'{name}:1: no `=== "asyncio"` tab followed by an `=== "AnyIO"` tab '
        "for the correct version",
        f"{name}:1: no `## Performance` section with a table of measured numbers",
        f"{name}:1: no link to the other pattern page(s) "
        "['parallelize-independent-operations.md', 'parallel-data-fetching.md', "
        "'per-request-deduplication.md']",
    ]


def test_a_pattern_page_without_its_summary_fails_under_its_title(tmp_path: Path) -> None:
    good = (SAMPLES / "good_pattern.md").read_text()
    start, end = good.index("## The short answer"), good.index("The rule, and what it saves.")
    page = tmp_path / "no_summary.md"
    page.write_text(good[:start] + good[end:])
    problems = pagecheck.pattern_problems(page)
    line = good[:start].count("\n") + 1
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{relative(page)}:{line}: right after the title, open with")


def test_a_summary_figure_must_be_printed_by_its_blocks(tmp_path: Path) -> None:
    good = (SAMPLES / "good_pattern.md").read_text()
    page = tmp_path / "typed_figure.md"
    page.write_text(good.replace("| Total | 200 ms | 100 ms |", "| Total | 250 ms | 100 ms |"))
    (problem,) = pagecheck.pattern_problems(page)
    line = good[: good.index("## The short answer")].count("\n") + 1
    assert problem.startswith(f"{relative(page)}:{line}: `## The short answer`: figures ['250 ms']")


TEMPLATE = SAMPLES / "pattern_template.md"
TEMPLATE_RUNS = [
    pytest.param(example, clock, id=f"{example.start_line}:{clock}")
    for example in find_examples(TEMPLATE)
    for clock in clocks_for(example)
]


def test_the_page_template_is_a_complete_pattern_page() -> None:
    assert pagecheck.pattern_problems(TEMPLATE) == []
    assert pagecheck.fence_problems(TEMPLATE) == []


@pytest.mark.parametrize(("example", "clock"), TEMPLATE_RUNS)
def test_the_page_template_blocks_run(example: CodeExample, clock: str, tmp_path: Path) -> None:
    ruff_check(example)
    check_format(example)
    check_block(example, clock, tmp_path)
