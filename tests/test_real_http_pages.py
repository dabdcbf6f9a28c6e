"""The real-HTTP sections of pages 1.1 and 2.4 say what their runs recorded.

Their figures come from real runs, so no test can hold them to an exact
value. What the recordings must show is the shape the prose describes,
against floors taken from the latency table: no total is shorter than the
upstream latency it waited for, and the fix beats the waterfall.
"""

from __future__ import annotations

import re
from pathlib import Path

from examples.services import LATENCY_MS
from tests.harness import DOCS, location
from tests.pagecheck import block_titled

WATERFALL_PAGE = DOCS / "patterns" / "prevent-waterfall-chains.md"
STREAMING_PAGE = DOCS / "patterns" / "parallel-data-fetching.md"
HINT = "the recorded output does not show what the prose says; re-record or fix the block"


def recorded_ms(page: Path, title: str, pattern: str) -> tuple[str, list[int]]:
    """Where the block is, and the figures `pattern` (one group) matches in it, in order."""
    example = block_titled(page, title)
    found = re.findall(pattern, example.source, flags=re.M)
    return location(example), [int(figure) for figure in found]


def test_over_http_the_fix_beats_the_waterfall() -> None:
    took = r"^\s*#> GET /dashboard took (\d+) ms$"
    where, [waterfall] = recorded_ms(WATERFALL_PAGE, "dashboard_over_http.py", took)
    chain = LATENCY_MS["auth"] + LATENCY_MS["user_data"]
    in_sequence = chain + LATENCY_MS["config"]
    assert waterfall >= in_sequence, f"{where}: {waterfall} ms < {in_sequence} ms; {HINT}"
    for title in ("dashboard_over_http_fixed.py", "dashboard_over_http_fixed_anyio.py"):
        where, [fixed] = recorded_ms(WATERFALL_PAGE, title, took)
        assert chain <= fixed < waterfall, (
            f"{where}: the fix took {fixed} ms, the waterfall {waterfall} ms, "
            f"the chain is {chain} ms; {HINT}"
        )


def test_over_uvicorn_the_streamed_page_starts_before_the_whole_page() -> None:
    title = "streamed_over_uvicorn.py"
    where, [whole, streamed] = recorded_ms(
        STREAMING_PAGE, title, r"^\s*(\d+) ms  headers, status 200$"
    )
    _, [header_part] = recorded_ms(
        STREAMING_PAGE, title, r"^\s*(\d+) ms +\d+ bytes  <template id=\"header-ready\">"
    )
    slowest = max(LATENCY_MS["header"], LATENCY_MS["widget"])
    assert whole >= slowest, f"{where}: whole page's headers at {whole} ms; {HINT}"
    assert streamed < LATENCY_MS["header"] <= header_part < slowest, (
        f"{where}: streamed headers at {streamed} ms, header part at {header_part} ms; {HINT}"
    )
