"""`make check-page PAGE=<slug>` runs every browser test about that page.

The recipe selects tests with `-k`, which matches item ids and keywords, so
a browser test file about one page is only run if its items carry the page's
slug: in a parameter id (`[patterns/<slug>.md]`) or through the `page`
marker (tests/browser/conftest.py). A file is about one page when its
docstring names exactly one pattern page, or its module is marked with one.

The filter is read from the recipe itself (`make -n`), and the selection is
pytest's own (`--collect-only`), so neither can drift from what check-page does.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import DOCS, ROOT

BROWSER_TESTS = ROOT / "tests" / "browser"
SLUGS = sorted(path.stem for path in (DOCS / "patterns").glob("*.md"))
MODULE_PAGE_MARKER = re.compile(
    r"""^pytestmark = pytest\.mark\.page\(\s*["']patterns/([a-z0-9-]+)\.md["']""", re.M
)


def pages_named(test_file: Path) -> set[str]:
    """The slugs of the pattern pages the file's docstring or its module's `page` marker names."""
    text = test_file.read_text()
    docstring = ast.get_docstring(ast.parse(text)) or ""
    named = {slug for slug in SLUGS if slug in docstring}
    return named | set(MODULE_PAGE_MARKER.findall(text))


def files_about_one_page() -> list[tuple[Path, str]]:
    found = []
    for test_file in sorted(BROWSER_TESTS.glob("test_*.py")):
        pages = pages_named(test_file)
        if len(pages) == 1:
            found.append((test_file, pages.pop()))
    return found


def check_page_filter(slug: str) -> str:
    """The `-k` expression of `make check-page PAGE=<slug>`, as make expands it."""
    shown = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(ROOT), "check-page", f"PAGE={slug}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    for line in shown.splitlines():
        words = shlex.split(line)
        if "pytest" in words and "-k" in words:
            return words[words.index("-k") + 1]
    raise AssertionError(f"Makefile: the check-page recipe runs no pytest with -k:\n{shown}")


def collected(test_file: Path, *options: str) -> list[str]:
    """The ids pytest collects from `test_file` with these options."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTEST_ADDOPTS", "JUNIT_DIR"} and not name.startswith("PYTEST_XDIST")
    }
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly"]
    result = subprocess.run(
        [*command, *options, str(test_file.relative_to(ROOT))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # Exit code 5: nothing collected (all deselected), which the caller reports.
    assert result.returncode in {0, 5}, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_some_browser_file_is_about_one_page() -> None:
    """The check below must have something to check."""
    assert files_about_one_page(), (
        "tests/test_check_page.py: no file under tests/browser names one pattern page; "
        "tests/browser/test_streamed_page.py should (page 1.3)"
    )


@pytest.mark.parametrize(
    ("test_file", "slug"),
    files_about_one_page(),
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
def test_check_page_runs_the_browser_tests_about_the_page(test_file: Path, slug: str) -> None:
    expression = check_page_filter(slug)
    every = collected(test_file)
    selected = collected(test_file, "-k", expression)
    missed = [item for item in every if item not in selected]
    where = test_file.relative_to(ROOT)
    assert every and not missed, (
        f"{where}:1: this file is about docs/patterns/{slug}.md, but "
        f'`make check-page PAGE={slug}` (-k "{expression}") would not run '
        + ", ".join(missed or ["any of its tests"])
        + f'; mark the module with pytestmark = pytest.mark.page("patterns/{slug}.md")'
    )
