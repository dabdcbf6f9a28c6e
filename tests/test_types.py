"""Every Python block on the site, and every module in examples/, passes mypy --strict.

One mypy run (tests/typecheck.py) serves every item. Block items are named
after the block, `docs/page.md:FIRST-LAST`, as its run items are, so
`-k index.md` picks a page's blocks here too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_examples import CodeExample

from tests import pagecheck, perrun, typecheck
from tests.harness import DOCS, ExampleError, relative

SAMPLE = Path(__file__).parent / "samples" / "type_error.md"
BLOCKS = typecheck.blocks(typecheck.SITE_PAGES)
MODULES = [relative(path) for path in typecheck.EXAMPLE_MODULES]


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> typecheck.Report:
    """One mypy run over the site's blocks, the sample page and examples/.

    Under pytest-xdist the first worker to get here runs mypy; the others
    read its report (tests/perrun.py).
    """
    return perrun.once(
        tmp_path_factory,
        "typecheck",
        lambda folder: typecheck.check([*typecheck.SITE_PAGES, SAMPLE], folder),
    )


def fail_with(report: typecheck.Report, source_id: str) -> None:
    problems = report.of(source_id)
    if any(problem.severity == "error" for problem in problems):
        raise ExampleError(typecheck.describe(report.sources[source_id], problems))


@pytest.mark.parametrize("example", BLOCKS, ids=typecheck.block_id)
def test_block_type_checks(example: CodeExample, report: typecheck.Report) -> None:
    fail_with(report, typecheck.block_id(example))


@pytest.mark.parametrize("module", MODULES)
def test_module_type_checks(module: str, report: typecheck.Report) -> None:
    fail_with(report, module)


def test_mypy_said_nothing_that_names_no_block(report: typecheck.Report) -> None:
    """A crash, a bad setting or an error elsewhere is not lost."""
    assert not report.unplaced, "\n".join(report.unplaced)


# --- The check can fail, and says where ---------------------------------------------


def sample_line(text: str) -> int:
    """1-based line of the sample page that contains `text`."""
    lines = SAMPLE.read_text().splitlines()
    (number,) = [n for n, line in enumerate(lines, start=1) if text in line]
    return number


def sample_problems(report: typecheck.Report) -> list[str]:
    return [
        str(problem)
        for example in typecheck.blocks([SAMPLE])
        for problem in report.of(typecheck.block_id(example))
    ]


def test_a_type_error_is_reported_at_its_markdown_line(report: typecheck.Report) -> None:
    name = relative(SAMPLE)
    assert sample_problems(report) == [
        f"{name}:{sample_line('MARKER: return')}: error: Missing return statement  [return]",
        # In a content tab: the block is indented, the line is still the page's.
        f"{name}:{sample_line('MARKER: union-attr')}: error: "
        'Item "None" of "User | None" has no attribute "name"  [union-attr]',
        f"{name}:{sample_line('# type: ignore')}: error: "
        "`# type: ignore[union-attr]` switches the type check off on this line",
    ]


def test_the_message_says_what_to_do(report: typecheck.Report) -> None:
    (first, *_) = typecheck.blocks([SAMPLE])
    source = report.sources[typecheck.block_id(first)]
    message = typecheck.describe(source, report.of(source.id))
    name = relative(SAMPLE)
    assert message.splitlines()[0].startswith(f"{name}:{sample_line('MARKER: return')}: ")
    assert f"1 error in the block at {name}:{first.start_line + 1}." in message
    assert message.endswith(f"Check again: .venv/bin/python -m tests.typecheck {name}")


def test_the_command_prints_the_same(capsys: pytest.CaptureFixture[str]) -> None:
    assert typecheck.main([str(SAMPLE), "examples/timeline.py"]) == 1
    printed = capsys.readouterr().out
    name = relative(SAMPLE)
    assert f"{name}:{sample_line('MARKER: union-attr')}: error: Item " in printed
    assert printed.count(": error:") == 3
    assert printed.splitlines()[-1].startswith("3 type errors in 3 blocks and 1 module (")


def test_the_testing_page_shows_what_the_check_prints(report: typecheck.Report) -> None:
    """The error shown on docs/testing.md is the sample's first, moved to a page of its own."""
    lines = pagecheck.section(DOCS / "testing.md", "## Types")
    start = lines.index("```text") + 1
    shown = "\n".join(lines[start : lines.index("```", start)])
    (first, *_) = typecheck.blocks([SAMPLE])
    source = report.sources[typecheck.block_id(first)]
    printed = typecheck.describe(source, report.of(source.id))
    assert shown == printed.replace(relative(SAMPLE), "docs/patterns/my-pattern.md")


def test_a_syntax_error_stops_mypy_and_says_so(tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text("# Broken\n\n```python\nasync def main(:\n    pass\n```\n")
    found = typecheck.check([page], tmp_path, modules=[])
    (problems,) = found.problems.values()
    assert str(problems[0]).startswith(f"{page}:4: error: ")
    assert found.unplaced == [
        "mypy stopped at the error(s) above (a syntax error stops it) without checking "
        "the other blocks and modules: fix those first"
    ]
