"""The cheat sheet has one row per JavaScript construct, each shown running or said not to be."""

from __future__ import annotations

import re

from tests.harness import DOCS
from tests.pagecheck import table_rows

CHEAT_SHEET = DOCS / "cheat-sheet.md"
CONSTRUCTS = [
    "Promise.all(",
    "Promise.allSettled(",
    "Promise.race(",
    "Promise.any(",
    "start now, await later",
    "React.cache(",
    "<Suspense>",
    "after(",
    "AbortSignal.timeout(",
    "new LRUCache(",
]


def test_one_row_per_construct_with_where_it_runs() -> None:
    lines = CHEAT_SHEET.read_text().splitlines()
    header, *rows = table_rows(lines)
    assert header == ["JavaScript", "asyncio", "AnyIO / Trio", "Shown running", "Caveat"]
    for construct in CONSTRUCTS:
        found = [row for row in rows if construct in row[0]]
        assert len(found) == 1, f"docs/cheat-sheet.md: {len(found)} rows for {construct!r}"
        where = "docs/cheat-sheet.md:" + str(
            1 + next(n for n, line in enumerate(lines) if line.startswith(f"| {found[0][0]} |"))
        )
        shown, caveat = found[0][3], found[0][4]
        runs_here = re.fullmatch(r"\[[^\]]+\]\(patterns/[\w-]+\.md#[\w-]+\)", shown)
        assert runs_here or shown == "Not covered yet", (
            f"{where}: the row {construct!r} must link one section of a pattern page that "
            f"runs it, or say 'Not covered yet' (found {shown!r}); other links go in the caveat"
        )
        assert caveat, f"{where}: the row {construct!r} has no caveat"
    assert len(rows) == len(CONSTRUCTS), (
        f"docs/cheat-sheet.md: {len(rows)} rows, {len(CONSTRUCTS)} constructs: add the new "
        "construct to CONSTRUCTS in tests/test_page_cheat_sheet.py"
    )
