"""The harness catches what it promises to catch, and says where.

Each sample page in tests/samples/ breaks one rule. Every failure message
must start with the sample's path and the line at fault.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pytest_examples import CodeExample, find_examples

from tests import pagecheck
from tests.harness import (
    CLOCKS,
    DOCS,
    REAL_EARLY_MS,
    REAL_LATE_MS,
    Allowance,
    ExampleError,
    Observed,
    check_block,
    check_format,
    check_no_stray_output,
    check_within_tolerance,
    clocks_for,
    fastest_real_recording,
    figure_allowance,
    relative,
    ruff_check,
    run_block,
)
from tests.loopwatch import ClockReading

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


def test_output_that_depends_on_tied_timers_fails_on_the_ties_clock(tmp_path: Path) -> None:
    # Both 50 ms calls are due at the same virtual moment: one step on the
    # asyncio clock, two steps on the ties clock (and on a quiet real one).
    run_and_check("tied_timers.md", "asyncio", tmp_path)
    with pytest.raises(ExampleError) as failure:
        run_and_check("tied_timers.md", "ties", tmp_path)
    message = str(failure.value)
    assert message.startswith(f"{where('tied_timers.md', '#> 2 done first')}: ")
    assert "fire a step apart, in the order they were set (ties clock)" in message
    assert "+    #> 1 done first" in message


def test_the_ties_clock_fires_tied_timers_in_the_order_they_were_set(tmp_path: Path) -> None:
    # The virtual asyncio clock fires these three in the heap's order: b, c, a.
    example = CodeExample.create(
        "import asyncio\n\n\nasync def main():\n    loop = asyncio.get_running_loop()\n"
        "    fired = []\n    for name in ('b', 'a', 'c'):\n"
        "        loop.call_later(0.05, fired.append, name)\n"
        "    await asyncio.sleep(0.06)\n"
        "    print(fired, f'{loop.time() * 1000:.6f} ms')\n"
        "    #> ['b', 'a', 'c'] 60.000000 ms\n\n\nasyncio.run(main())\n",
        path=tmp_path / "page.md",
    )
    check_block(example, "ties", tmp_path)


def test_the_ties_clock_moves_no_figure_over_a_thousand_ties_in_a_row(
    tmp_path: Path,
) -> None:
    example = CodeExample.create(
        "import asyncio\n\nfrom examples.services import fetch_config, fetch_settings\n"
        "from examples.timeline import Timeline\n\n\nasync def main():\n"
        "    with Timeline() as timeline:\n        for _ in range(1000):\n"
        "            await asyncio.gather(fetch_config(), fetch_settings())\n"
        "    print(f'took {timeline.total_ms} ms')\n    #> took 50000 ms\n\n\n"
        "asyncio.run(main())\n",
        path=tmp_path / "page.md",
    )
    check_block(example, "ties", tmp_path)


@pytest.mark.parametrize("clock", CLOCKS)
def test_time_sleep_on_the_loop_fails_at_its_line_on_every_clock(
    clock: str, tmp_path: Path
) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("blocking_sleep.md", clock, tmp_path)
    message = str(failure.value)
    place = where("blocking_sleep.md", "MARKER")
    assert message.startswith(f"{place}: a blocking call to time.sleep on the event loop's thread")
    assert message.count(place) == 1, message  # said once, not again as the exception


def test_a_blocking_call_the_block_catches_is_still_reported(tmp_path: Path) -> None:
    example = CodeExample.create(
        "import asyncio\nimport time\n\n\nasync def main():\n    try:\n"
        "        time.sleep(0.01)\n    except Exception:\n        pass\n\n\n"
        "asyncio.run(main())\n",
        path=SAMPLES / "inline.md",
        start_line=10,
    )
    with pytest.raises(ExampleError) as failure:
        run_block(example, "asyncio", tmp_path)
    assert str(failure.value).startswith(
        f"{relative(SAMPLES / 'inline.md')}:17: a blocking call to time.sleep"
    )


@pytest.mark.parametrize("clock", CLOCKS)
def test_a_busy_loop_fails_on_every_clock_at_its_line(clock: str, tmp_path: Path) -> None:
    """A virtual clock does not see CPU time; the CPU time of each loop step does."""
    with pytest.raises(ExampleError) as failure:
        run_and_check("busy_loop.md", clock, tmp_path)
    message = str(failure.value)
    loop_lines = [line_of("busy_loop.md", "while time"), line_of("busy_loop.md", "pass  #")]
    assert any(
        message.startswith(f"{relative(SAMPLES / 'busy_loop.md')}:{n}: ") for n in loop_lines
    ), message
    assert re.search(r"one step held the event loop for 1\d\d ms of CPU", message), message


def test_a_wait_the_virtual_clock_skips_fails_on_the_real_clock(tmp_path: Path) -> None:
    """A thread's real wait costs nothing on a virtual clock; the real clock must see it."""
    run_and_check("thread_wait.md", "asyncio", tmp_path)
    run_and_check("thread_wait.md", "trio", tmp_path)
    with pytest.raises(ExampleError) as failure:
        run_and_check("thread_wait.md", "real", tmp_path)
    message = str(failure.value)
    assert message.startswith(where("thread_wait.md", "#> took 0 ms"))
    assert "that nothing explains" in message


def test_never_awaited_coroutine_fails(tmp_path: Path) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("never_awaited.md", "asyncio", tmp_path)
    message = str(failure.value)
    # At the line that created the coroutine, not the block's first line.
    assert message.startswith(f"{where('never_awaited.md', 'MARKER')}: RuntimeWarning")
    assert "coroutine 'fetch_config' was never awaited" in message


def test_pending_task_fails_at_the_line_that_started_it(tmp_path: Path) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("pending_task.md", "asyncio", tmp_path)
    assert str(failure.value).startswith(f"{where('pending_task.md', 'create_task')}: ")
    assert "task left pending when main() returned" in str(failure.value)
    assert "fetch_config" in str(failure.value)


def test_never_retrieved_task_exception_fails(tmp_path: Path) -> None:
    with pytest.raises(ExampleError) as failure:
        run_and_check("never_retrieved.md", "asyncio", tmp_path)
    assert str(failure.value).startswith(f"{where('never_retrieved.md', 'create_task')}: ")
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


def test_real_clock_tolerance_is_net_of_the_machines_delay_and_the_blocks_cpu() -> None:
    recorded = "print(timeline)\n#> took 150 ms\n"
    example = CodeExample.create(recorded, path=SAMPLES / "inline.md", start_line=0)

    def check(real_ms: int, lag_ms: int = 0, cpu_ms: int = 0) -> list[tuple[int, int]]:
        observed = Observed(lag_ms=lag_ms, cpu_ms=cpu_ms)
        return check_within_tolerance(example, recorded.replace("150", str(real_ms)), observed)

    allowed = 150 + REAL_LATE_MS
    for real_ms in (150 - REAL_EARLY_MS, 150, allowed):
        assert check(real_ms) == [(150, real_ms)]
    assert check(allowed + 300, lag_ms=300) == [(150, allowed + 300)]  # a busy machine
    assert check(allowed + 20, cpu_ms=20) == [(150, allowed + 20)]  # the block's own work
    assert check(allowed + 320, lag_ms=300, cpu_ms=20) == [(150, allowed + 320)]
    too_late = ((allowed + 1, 0, 0), (allowed + 301, 300, 0), (allowed + 21, 0, 20))
    for real_ms, lag_ms, cpu_ms in ((150 - REAL_EARLY_MS - 1, 0, 0), *too_late):
        with pytest.raises(ExampleError, match=f"printed {real_ms} ms") as failure:
            check(real_ms, lag_ms, cpu_ms)
        if real_ms > allowed:
            message = str(failure.value)
            assert f"delayed the run by {lag_ms} ms" in message, message
            assert f"used {cpu_ms} ms of CPU" in message, message
            assert "that leaves 11 ms that nothing explains" in message, message


def reading(
    at_ms: float, cpu_ms: float = 0, lag_ms: float = 0, imported_ms: float = 0
) -> ClockReading:
    lag = lag_ms / 1000
    return ClockReading(at_ms / 1000, cpu_ms / 1000, lag, 0.0, imported_ms / 1000, lag_after=lag)


def test_a_figure_is_allowed_the_cpu_and_lag_between_its_own_two_readings() -> None:
    # 40 ms of computing and a 30 ms import before the timed part, none inside
    # it; 5 ms of lag inside it.
    observed = Observed(
        readings=[
            reading(0),
            reading(50, cpu_ms=40, imported_ms=30),
            reading(150, cpu_ms=40, lag_ms=5, imported_ms=30),
        ],
        lag_ms=5,
        cpu_ms=40,
        import_ms=30,
    )
    assert figure_allowance(observed, real_ms=100, recorded_ms=100) == Allowance(5, 0, True)
    assert figure_allowance(observed, real_ms=150, recorded_ms=150) == Allowance(35, 40, True)
    assert figure_allowance(observed, real_ms=50, recorded_ms=0) == Allowance(30, 40, True)
    # No two readings that far apart (a mean, a sum): the whole run's.
    assert figure_allowance(observed, real_ms=120, recorded_ms=100) == Allowance(35, 40, False)


def test_of_many_pairs_a_figure_gets_the_one_that_explains_most() -> None:
    # CPU grows by 1 ms every 10 ms, and by 30 ms at once at 1 s: of all the
    # pairs 100 ms apart, those around that moment explain the most.
    readings = [reading(at, cpu_ms=at / 10 + (30 if at >= 1000 else 0)) for at in range(0, 2000, 2)]
    observed = Observed(readings=readings)
    assert figure_allowance(observed, real_ms=100, recorded_ms=100) == Allowance(0, 40, True)
    assert figure_allowance(observed, real_ms=100, recorded_ms=10) == Allowance(0, 40, True)


def test_computing_for_longer_than_the_figure_records_fails() -> None:
    recorded = "print(timeline)\n#> took 0 ms\n"
    example = CodeExample.create(recorded, path=SAMPLES / "inline.md", start_line=0)
    observed = Observed(readings=[reading(0), reading(300, cpu_ms=299)], cpu_ms=299)
    with pytest.raises(ExampleError) as failure:
        check_within_tolerance(example, recorded.replace("0 ms", "300 ms"), observed)
    message = str(failure.value)
    assert message.startswith("tests/samples/inline.md:2: on the real clock this printed 300 ms")
    assert "computed for 299 ms of CPU between two readings of the loop's clock 300 ms apart" in (
        message
    ), message
    assert "more than the recorded figure plus" in message, message


def test_a_step_that_reads_the_clock_as_it_computes_holds_the_loop(tmp_path: Path) -> None:
    """Noting each clock reading is the harness's work, but it must not hide the step's."""
    with pytest.raises(ExampleError) as failure:
        run_and_check("clock_spin.md", "real", tmp_path)
    assert "one step held the event loop" in str(failure.value), str(failure.value)


def test_a_real_wait_fails_whatever_the_block_computes_before_it(tmp_path: Path) -> None:
    run_and_check("cpu_then_wait.md", "asyncio", tmp_path)
    with pytest.raises(ExampleError) as failure:
        run_and_check("cpu_then_wait.md", "real", tmp_path)
    message = str(failure.value)
    assert message.startswith(where("cpu_then_wait.md", "#> took 0 ms")), message
    assert "that nothing explains" in message, message


def test_broken_links_and_anchors_fail_at_their_lines_before_any_build() -> None:
    problems = pagecheck.link_problems(SAMPLES / "broken_links.md")
    assert [problem.split(": ", 2)[:2] for problem in problems] == [
        [where("broken_links.md", "nowhere.md"), "link to '../../docs/nowhere.md'"],
        [
            where("broken_links.md", "no-such-heading"),
            "link to '../../docs/index.md#no-such-heading'",
        ],
    ]
    assert "no such file docs/nowhere.md; fix the path" in problems[0]
    assert "docs/index.md has no #no-such-heading; link to a heading that exists" in problems[1]


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
        f'{name}:3: this `=== "AnyIO"` tab has no `=== "asyncio"` tab before it in its set; '
        "show every correct version in both",
        f'{name}:9: this `=== "asyncio"` tab has no `=== "AnyIO"` tab after it in its set; '
        "show every correct version in both",
        f"{name}:1: no `## Performance` section with a table of measured numbers",
    ]


def test_a_pattern_page_that_relates_to_no_other_says_so(tmp_path: Path) -> None:
    good = (SAMPLES / "good_pattern.md").read_text()
    related = good.index("## Related patterns")
    page = tmp_path / "alone.md"
    page.write_text(good[:related] + "## Related patterns\n\n- [none](https://example.org)\n")
    line = good[:related].count("\n") + 1
    assert pagecheck.pattern_problems(page) == [
        f"{relative(page)}:{line}: no `## Related patterns` section linking another pattern "
        "page; link the pages this one relates to, each with a line on how"
    ]


@pytest.fixture
def patterns(tmp_path: Path) -> Path:
    """A copy of the site's pattern pages, to break."""
    copy = tmp_path / "patterns"
    copy.mkdir()
    for slug in pagecheck.PATTERN_PAGES.values():
        (copy / slug).write_text((DOCS / "patterns" / slug).read_text())
    assert pagecheck.pattern_set_problems(copy) == []
    return copy


def test_a_pattern_page_no_other_page_relates_to_fails_at_its_title(patterns: Path) -> None:
    orphan = "per-request-deduplication.md"
    for page in patterns.glob("*.md"):
        kept = [line for line in page.read_text().splitlines() if f"]({orphan}" not in line]
        page.write_text("\n".join(kept) + "\n")
    assert pagecheck.pattern_set_problems(patterns) == [
        f"{relative(patterns / orphan)}:1: no other pattern page links here from its "
        "`## Related patterns`; add this page there on each page it relates to"
    ]


def test_a_pattern_page_must_be_registered_under_its_number(patterns: Path) -> None:
    renumbered = patterns / "authenticate-actions.md"
    renumbered.write_text(renumbered.read_text().replace("# 2.1 ", "# 2.2 ", 1))
    (patterns / "unlisted.md").write_text((SAMPLES / "good_pattern.md").read_text())
    title = 1 + renumbered.read_text().splitlines().index(
        next(line for line in renumbered.read_text().splitlines() if line.startswith("# 2.2 "))
    )
    assert pagecheck.pattern_set_problems(patterns) == [
        f"{relative(renumbered)}:{title}: the title says 2.2, PATTERN_PAGES registers the "
        "page as 2.1; make them the same",
        f"{relative(patterns / 'unlisted.md')}:1: not registered: add it to PATTERN_PAGES in "
        "tests/pagecheck.py under its number (see docs/contributing.md)",
    ]


def test_each_tab_without_its_twin_fails_at_its_line() -> None:
    name = "unpaired_tab.md"
    problems = pagecheck.pattern_problems(SAMPLES / name)
    tab_line = line_of(name, "MARKER") - 3  # the `=== "asyncio"` line above the block
    assert problems == [
        f'{relative(SAMPLES / name)}:{tab_line}: this `=== "asyncio"` tab has no '
        '`=== "AnyIO"` tab after it in its set; show every correct version in both'
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


def test_a_real_stack_block_runs_on_the_real_clock_only() -> None:
    def block(attributes: str) -> CodeExample:
        return CodeExample.create(
            "import asyncio\n",
            path=SAMPLES / "inline.md",
            start_line=10,
            prefix=f"{{.python {attributes}}}",
        )

    assert clocks_for(block('stack="real"')) == ["real"]
    with pytest.raises(ExampleError) as failure:
        clocks_for(block('stack="virtual"'))
    assert str(failure.value).startswith(f"{relative(SAMPLES / 'inline.md')}:10:")
    assert 'must be "real"' in str(failure.value)


def test_a_real_stack_figure_may_be_faster_than_its_real_recording() -> None:
    recorded = "print(took)\n#> took 300 ms\n"

    def check(attributes: str, real_ms: int) -> list[tuple[int, int]]:
        example = CodeExample.create(
            recorded, path=SAMPLES / "inline.md", start_line=0, prefix=f"{{.python {attributes}}}"
        )
        return check_within_tolerance(example, recorded.replace("300", str(real_ms)))

    # Recorded from a real run: a quieter machine may be twice as fast, and 30 ms.
    assert check('stack="real"', 135) == [(300, 135)]
    with pytest.raises(ExampleError, match="printed 134 ms"):
        check('stack="real"', 134)
    # Recorded from a virtual run: the real clock can only add time.
    with pytest.raises(ExampleError, match="printed 297 ms"):
        check('title="x"', 297)


def test_a_real_stack_recording_is_the_fastest_of_three_runs(tmp_path: Path) -> None:
    # Each run of this block prints the next figure of a list, so the
    # recording must come from the second run of three.
    source = (
        "import asyncio\n"
        "from pathlib import Path\n\n"
        'runs = Path(__file__).with_name("runs.txt")\n'
        "done = int(runs.read_text()) if runs.exists() else 0\n"
        "runs.write_text(str(done + 1))\n\n\n"
        "async def main() -> None:\n"
        '    print(f"took {[300, 100, 200][done]} ms")\n\n\n'
        "asyncio.run(main())\n"
    )
    example = CodeExample.create(
        source, path=SAMPLES / "inline.md", start_line=0, prefix='{.python stack="real"}'
    )
    recorded = fastest_real_recording(example, tmp_path)
    assert recorded is not None
    assert "#> took 100 ms" in recorded
    assert recorded.count("#> took") == 1


def test_any_warning_a_reader_would_see_fails_at_its_line(tmp_path: Path) -> None:
    example = CodeExample.create(
        "import asyncio\nimport warnings\n\n\nasync def main() -> None:\n"
        '    warnings.warn("old API", DeprecationWarning, stacklevel=1)\n\n\n'
        "asyncio.run(main())\n",
        path=SAMPLES / "inline.md",
        start_line=10,
    )
    with pytest.raises(ExampleError) as failure:
        run_block(example, "asyncio", tmp_path)
    assert str(failure.value).startswith(
        f"{relative(SAMPLES / 'inline.md')}:16: DeprecationWarning: old API"
    ), str(failure.value)


def test_recorded_lines_are_the_output_under_prints_not_docstrings(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        '```python title="x.py"\n'
        "def main() -> None:\n"
        '    """Print two lines.\n\n'
        "    The closing quotes sit on their own line.\n"
        '    """\n'
        '    print("one")\n'
        "    #> one\n"
        '    print("two\\nthree")\n'
        '    """\n'
        "    two\n"
        "    three\n"
        '    """\n\n\n'
        "main()\n"
        "```\n"
    )
    assert pagecheck.recorded_lines(page, "x.py") == ["one", "two", "three"]


def test_output_left_behind_by_an_earlier_update_fails_at_its_line(tmp_path: Path) -> None:
    source = (
        "def main() -> None:\n"
        '    """A docstring is not output."""\n'
        "    for n in (1, 2):\n"
        "        print(n)\n"
        "        #> 1\n"
        "        #> 2\n"
        '        """\n'
        "        1\n"
        '        """\n'
        "\n\nmain()\n"
    )
    example = CodeExample.create(source, path=tmp_path / "page.md")
    with pytest.raises(ExampleError) as failure:
        check_no_stray_output(example)
    assert str(failure.value).startswith(f"{relative(tmp_path / 'page.md')}:7: a string statement")
    recorded = source.replace('        """\n        1\n        """\n', "")
    check_no_stray_output(CodeExample.create(recorded, path=tmp_path / "page.md"))
