"""The figures on docs/testing.md are the suite's own, written by a command."""

from __future__ import annotations

from collections import Counter

import pytest

from tests import figures
from tests.harness import relative
from tests.test_docs import EXAMPLES
from tests.test_faults import matrix


def test_the_counts_are_the_suites(tmp_path_factory: pytest.TempPathFactory) -> None:
    _, cases = matrix(tmp_path_factory)
    line, stated = figures.section_text(figures.TESTING_PAGE, "suite counts")
    actual = figures.counts_table(EXAMPLES, Counter(case.kind for case in cases))
    assert stated == actual, (
        f"{relative(figures.TESTING_PAGE)}:{line}: the suite's counts are out of date; "
        "run `make update-examples` to rewrite them.\n"
        f"stated:\n{stated}\nactual:\n{actual}"
    )


def test_the_speed_table_is_written_by_the_benchmark() -> None:
    line, stated = figures.section_text(figures.TESTING_PAGE, "suite speed")
    assert stated.startswith("Measured by `make bench`"), (
        f"{relative(figures.TESTING_PAGE)}:{line}: the speed table is not the one "
        "`make bench` writes; run `make bench` to rewrite it."
    )
