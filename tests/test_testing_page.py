"""The figures on docs/testing.md are the suite's own."""

from __future__ import annotations

from collections import Counter

from tests.harness import DOCS
from tests.pagecheck import table_value
from tests.test_docs import EXAMPLES, PAGES, RUNS
from tests.test_faults import CASES

TESTING = DOCS / "testing.md"


def stated(label: str) -> str:
    return table_value(TESTING, label)


def test_block_and_run_counts() -> None:
    runs = Counter(param.values[1] for param in RUNS)
    pages = {example.path for example in EXAMPLES}
    assert stated("Pages with Python blocks") == str(len(pages))
    assert len(pages) <= len(PAGES)
    assert stated("Python blocks") == str(len(EXAMPLES))
    assert stated("Runs on virtual asyncio") == str(runs["asyncio"])
    assert stated("Runs on virtual Trio") == str(runs["trio"])
    assert stated("Runs on the real clock") == str(runs["real"])


def test_fault_run_counts() -> None:
    kinds = Counter(case.kind for case in CASES)
    assert stated("Fault runs: a call failing") == str(kinds["fail"])
    assert stated("Fault runs: a call hanging") == str(kinds["stall"])
