"""The figures on docs/testing.md are the suite's own, written by a command."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests import figures, loopwatch
from tests.harness import REAL_EARLY_MS, REAL_LATE_MS, TIE_STEP_S, relative
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


# What the page says of each limit, and the limit the suite uses.
STATED_LIMITS = [
    (r"the recorded value minus (\d+) ms", REAL_EARLY_MS, "tests/harness.py REAL_EARLY_MS"),
    (r"at most the recorded value plus (\d+) ms", REAL_LATE_MS, "tests/harness.py REAL_LATE_MS"),
    (r"the (\d+) ms left covers", REAL_LATE_MS, "tests/harness.py REAL_LATE_MS"),
    (
        r"counts up to the recorded figure plus (\d+) ms",
        REAL_LATE_MS,
        "tests/harness.py REAL_LATE_MS",
    ),
    (
        r"a probe timer every (\d+) ms",
        round(loopwatch.PROBE_EVERY_SECONDS * 1000),
        "tests/loopwatch.py PROBE_EVERY_SECONDS",
    ),
    (
        r"uses more than (\d+) ms of CPU time",
        loopwatch.STEP_CPU_LIMIT_MS,
        "tests/loopwatch.py STEP_CPU_LIMIT_MS",
    ),
    (
        r"due (\d+) ns after the last of them",
        round(TIE_STEP_S * 1e9),
        "tests/harness.py TIE_STEP_S",
    ),
]


@pytest.mark.parametrize(("pattern", "value", "source"), STATED_LIMITS)
def test_the_limits_the_page_states_are_the_suites(pattern: str, value: int, source: str) -> None:
    text = figures.TESTING_PAGE.read_text()
    found = re.search(pattern.replace(" ", r"\s+"), text)
    page = relative(figures.TESTING_PAGE)
    assert found, f"{page}:1: no sentence says `{pattern}`; the suite uses {value} ({source})."
    line = text.count("\n", 0, found.start(1)) + 1
    assert int(found.group(1)) == value, (
        f"{page}:{line}: the page says {found.group(1)} where the suite uses {value} "
        f"({source}); correct the page or the constant."
    )
