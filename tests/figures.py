"""The figures docs/testing.md quotes, written by commands, never typed.

Two tables live between markers on that page:

- the suite's counts (pages, blocks, runs per clock, fault runs, simulated
  time), which `make update-examples` rewrites and a test holds equal to the
  suite, and
- the suite's speed, which `make bench` measures and rewrites; no test reads
  a time.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from pytest_examples import CodeExample

from tests.harness import DOCS, clocks_for, relative

TESTING_PAGE = DOCS / "testing.md"
_TOTAL = re.compile(r"^\s*(?:#> )?total (\d+) ms\s*$", re.M)


def marked(name: str) -> tuple[str, str]:
    return f"<!-- {name}: start (written by a command; do not edit) -->", f"<!-- {name}: end -->"


def section_text(page: Path, name: str) -> tuple[int, str]:
    """The 1-based line after the start marker, and the text between the markers."""
    start, end = marked(name)
    text = page.read_text()
    if start not in text or end not in text:
        raise AssertionError(
            f"{relative(page)}:1: no `{start}` ... `{end}` markers; put them back "
            "around the table the command writes"
        )
    before, rest = text.split(start, 1)
    inside = rest.split(end, 1)[0]
    return before.count("\n") + 2, inside.strip("\n")


def write_section(page: Path, name: str, body: str) -> bool:
    """Replace what is between the markers; return whether anything changed."""
    start, end = marked(name)
    section_text(page, name)  # the markers must exist
    text = page.read_text()
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    new = f"{before}{start}\n{body.strip()}\n{end}{after}"
    if new == text:
        return False
    page.write_text(new)
    return True


def simulated_ms(example: CodeExample) -> int:
    """Milliseconds of the timelines the block's recorded output shows."""
    return sum(int(total) for total in _TOTAL.findall(example.source))


def counts_table(examples: list[CodeExample], fault_kinds: Counter[str]) -> str:
    """The counts table, from the blocks and the fault matrix."""
    runs: Counter[str] = Counter()
    simulated = 0
    for example in examples:
        for clock in clocks_for(example):
            runs[clock] += 1
            if clock != "real":
                simulated += simulated_ms(example)
    pages = {example.path for example in examples}
    rows = [
        ("Pages with Python blocks", str(len(pages))),
        ("Python blocks", str(len(examples))),
        ("Runs on virtual asyncio", str(runs["asyncio"])),
        ("Runs on virtual asyncio with no timers due together", str(runs["ties"])),
        ("Runs on virtual Trio", str(runs["trio"])),
        ("Runs on the real clock", str(runs["real"])),
        ("Fault runs: a call failing", str(fault_kinds["fail"])),
        ("Fault runs: a call hanging", str(fault_kinds["stall"])),
        (
            "Simulated time in the recorded timelines, over all virtual runs",
            f"{simulated / 1000:.1f} s",
        ),
    ]
    lines = ["| What | Count |", "|------|------:|"]
    lines += [f"| {what} | {count} |" for what, count in rows]
    return "\n".join(lines)


def suite_counts_table() -> str:
    """The counts table for the suite as it is on disk."""
    from tests import faultmatrix  # runs every block once: only when asked

    examples = faultmatrix.all_examples()
    bases = faultmatrix.baselines(examples)
    kinds = Counter(case.kind for case in faultmatrix.cases(bases))
    return counts_table(examples, kinds)
