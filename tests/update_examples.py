"""Rewrite recorded outputs and the suite's counts, and say what changed.

    .venv/bin/python -m tests.update_examples            # every page
    .venv/bin/python -m tests.update_examples prevent-waterfall   # pages matching a -k word

Runs every block (`tests/test_docs.py` in update mode): each block is
formatted as `ruff format` writes it and its recorded output is replaced by
what this run printed (the virtual asyncio run; the real run for
`stack="real"` blocks). Then rewrites the counts table on docs/testing.md.
Prints each block that changed, at its line, or that nothing did.
"""

from __future__ import annotations

import subprocess
import sys

from pytest_examples import find_examples

from tests import figures
from tests.harness import DOCS, ROOT, relative


def blocks() -> dict[str, list[tuple[int, str]]]:
    """Each page's blocks as (first line, source)."""
    return {
        relative(page): [(ex.start_line + 1, ex.source) for ex in find_examples(page)]
        for page in sorted(DOCS.rglob("*.md"))
    }


def main(words: list[str]) -> int:
    before = blocks()
    selection = "test_block_runs or test_block_lint"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/test_docs.py",
        "--update-examples",
        "--update-examples-disable-summary",
        "-p",
        "no:xdist",
        "-q",
        "-k",
        selection if not words else f"({selection}) and ({' or '.join(words)})",
    ]
    result = subprocess.run(command, cwd=ROOT, check=False)
    after = blocks()
    changed = []
    for page, old in before.items():
        new = after.get(page, [])
        for (line, source), (_, new_source) in zip(old, new, strict=False):
            if source != new_source:
                changed.append(f"  {page}:{line}")
    for line in changed:
        print(line)
    pages = len({line.rsplit(":", 1)[0] for line in changed})
    print(
        f"{len(changed)} block(s) changed in {pages} page(s)." if changed else "No block changed."
    )
    table = figures.suite_counts_table()
    if figures.write_section(figures.TESTING_PAGE, "suite counts", table):
        print(f"{relative(figures.TESTING_PAGE)}: the suite's counts changed; rewritten.")
    else:
        print(f"{relative(figures.TESTING_PAGE)}: the suite's counts are unchanged.")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
