"""Page 1.3, Strategic streaming boundaries: every figure comes from its own runs.

- Each row of the first Performance table (first byte, when each part was
  sent, when the page was complete) equals what `SendRecorder` printed for
  the block the row names in backquotes.
- The second table (fetches and placeholders of the sales table and
  summary) equals the lines the block printed.
- The short answer's table equals the before and after blocks' lines.
- The article block shows what the page says: awaited, a missing article
  is a 404; streamed, it is a 200; with the article awaited and the rest
  streamed, a 404 and an earlier first byte; the article table equals it.

Every value read here is recorded output, which tests/test_docs.py checks
against a run of the block on every clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.harness import DOCS
from tests.pagecheck import block_titled, section, table_rows

PAGE = DOCS / "patterns" / "strategic-suspense-boundaries.md"
SHARED = "Two boundaries and two fetches, or one of each"

# "  200 ms    95 bytes  <template ...": a chunk the app sent.
_CHUNK = re.compile(r"^(?P<ms>\d+) ms\s+(?P<bytes>\d+) bytes\s+(?P<text>.*)$")
_FIGURES = re.compile(r"^first byte (?P<first>\d+) ms, last part (?P<last>\d+) ms$")


@dataclass(frozen=True)
class Response:
    """One response as `print(recorder)` recorded it."""

    first_byte_ms: int
    parts_ms: tuple[int, ...]  # when each chunk after the shell left (a whole page: it)
    complete_ms: int
    parts: int  # templates sent (placeholders filled)


def recorded_lines(title: str) -> list[str]:
    """What the block printed, as recorded under its prints, in order."""
    lines, quoted = [], False
    for line in block_titled(PAGE, title).source.splitlines():
        text = line.strip()
        if text == '"""':
            quoted = not quoted
        elif quoted:
            lines.append(text)
        elif text.startswith("#> "):
            lines.append(text.removeprefix("#> "))
    assert lines, f'{PAGE.name}: block "{title}" has no recorded output'
    return lines


def responses(title: str) -> list[Response]:
    """Every response the block printed with `print(recorder)`, in order."""
    found: list[Response] = []
    chunks: list[re.Match[str]] = []
    for line in recorded_lines(title):
        if chunk := _CHUNK.match(line):
            chunks.append(chunk)
        elif figures := _FIGURES.match(line):
            # A page sent whole is one chunk: its parts left with it.
            after_shell = chunks[1:] or chunks
            found.append(
                Response(
                    int(figures["first"]),
                    tuple(int(c["ms"]) for c in after_shell),
                    int(figures["last"]),
                    sum(c["text"].startswith("<template") for c in after_shell),
                )
            )
            chunks = []
    assert found, f'{PAGE.name}: block "{title}" recorded no response'
    return found


def ms(values: tuple[int, ...]) -> str:
    """`(100, 200)` as the table writes it: `100, 200 ms`."""
    return ", ".join(str(value) for value in dict.fromkeys(values)) + " ms"


def test_the_performance_table_is_what_the_blocks_recorded() -> None:
    rows = table_rows(section(PAGE, "## Performance"))
    first_table = rows[1 : rows.index(next(r for r in rows if r[1] == "Fetches"))]
    assert first_table, f"{PAGE.name}: the Performance table has no rows"
    for label, first_byte, parts_at, complete in first_table:
        titles = re.findall(r"`([^`]+)`", label)
        assert len(titles) == 1, f"{PAGE.name}: Performance row {label!r} names no block in `...`"
        response = responses(titles[0])[0]
        stated = (first_byte, parts_at, complete)
        actual = (
            f"{response.first_byte_ms} ms",
            ms(response.parts_ms),
            f"{response.complete_ms} ms",
        )
        assert stated == actual, (
            f"{PAGE.name}: the Performance table says {stated} for {label!r}, the block "
            f"recorded {actual}; run make update-examples, then copy the recorded figures"
        )


def performance_table(header: str) -> list[list[str]]:
    """The rows of the Performance table whose first header cell starts with `header`."""
    rows = table_rows(section(PAGE, "## Performance"))
    headers = [i for i, row in enumerate(rows) if row[1] in ("Fetches", "Missing article")]
    starts = [i for i in headers if rows[i][0].startswith(header)]
    assert starts, f"{PAGE.name}: the Performance section has no table {header!r}"
    end = next((i for i in headers if i > starts[0]), len(rows))
    return rows[starts[0] + 1 : end]


def test_the_shared_fetch_table_is_what_the_block_recorded() -> None:
    stated = {row[0]: tuple(row[1:]) for row in performance_table("Sales table and summary")}
    line = re.compile(r"^(.+): fetches (\d+), placeholders (\d+), complete (\d+) ms$")
    found = [match.groups() for text in recorded_lines(SHARED) if (match := line.match(text))]
    actual = {
        name.capitalize(): (fetches, filled, f"{ms} ms") for name, fetches, filled, ms in found
    }
    assert stated == actual, (
        f"{PAGE.name}: the sales table and summary rows say {stated}, the block "
        f'"{SHARED}" recorded {actual}'
    )
    assert int(actual["Two boundaries"][0]) > int(actual["One boundary"][0])


def test_the_short_answer_table_is_what_the_blocks_printed() -> None:
    line = re.compile(r"^first byte (\d+) ms, sales (\d+) ms$")

    def figures(title: str) -> tuple[str, str]:
        [match] = [m for text in recorded_lines(title) if (m := line.match(text))]
        return f"{match[1]} ms", f"{match[2]} ms"

    before, after = figures("Before"), figures("After (asyncio)")
    assert figures("After (AnyIO)") == after, (
        f"{PAGE.name}: the two After tabs printed different figures"
    )
    rows = {row[0]: tuple(row[1:]) for row in table_rows(section(PAGE, "## The short answer"))[1:]}
    assert rows == {
        "First byte (headers and frame)": (before[0], after[0]),
        "Sales part": (before[1], after[1]),
    }, f"{PAGE.name}: the short answer's table differs from the Before and After blocks"
    assert int(after[0].split()[0]) < int(before[0].split()[0])


ARTICLE = "The article streamed, or awaited before the first byte"
# The article table's rows, by the route the block serves them at.
ARTICLE_ROUTES = {
    "Everything awaited": "/awaited",
    "Everything streamed": "/streamed",
    "Article awaited, related list streamed": "/article-first",
}


def article_lines() -> dict[str, tuple[int, int, int]]:
    """Status, first byte and completion the article block printed, by path."""
    line = re.compile(r"^(\S+)\s+(\d+)  first byte\s+(\d+) ms, complete (\d+) ms$")
    found = {}
    for text in recorded_lines(ARTICLE):
        match = line.match(text)
        assert match, f'{PAGE.name}: block "{ARTICLE}" printed an unexpected line: {text!r}'
        found[match[1]] = (int(match[2]), int(match[3]), int(match[4]))
    return found


def test_the_article_table_is_what_the_block_recorded() -> None:
    printed = article_lines()
    stated = {row[0]: tuple(row[1:]) for row in performance_table("Article page")}
    actual = {
        label: (
            str(printed[f"{route}/no-such-post"][0]),
            f"{printed[f'{route}/waterfalls'][1]} ms",
            f"{printed[f'{route}/waterfalls'][2]} ms",
        )
        for label, route in ARTICLE_ROUTES.items()
    }
    assert stated == actual, (
        f"{PAGE.name}: the article table says {stated}, the block "
        f'"{ARTICLE}" recorded {actual}; copy the recorded figures into the table'
    )


def test_a_streamed_page_cannot_answer_404_and_moving_the_boundary_can() -> None:
    statuses = {path: status for path, (status, _, _) in article_lines().items()}
    assert statuses == {
        "/awaited/waterfalls": 200,
        "/awaited/no-such-post": 404,
        "/streamed/waterfalls": 200,
        "/streamed/no-such-post": 200,
        "/article-first/waterfalls": 200,
        "/article-first/no-such-post": 404,
    }, f'{PAGE.name}: block "{ARTICLE}" printed other statuses than the page says'
    printed = article_lines()
    # The fix sends its first byte before the page that awaits everything.
    assert printed["/article-first/waterfalls"][1] < printed["/awaited/waterfalls"][1]


def test_nested_parts_follow_their_outer_part_and_fall_with_it() -> None:
    nested = responses("Nested boundaries: dashboard, then its panels")[0]
    assert nested.parts == 3 and nested.parts_ms == tuple(sorted(nested.parts_ms))
    analytics_down, user_down, activity_stalls = responses("Failing parts: each sends its fallback")
    assert analytics_down.parts == 3
    assert user_down.parts == 1, "with the user down, only the dashboard's fallback is sent"
    assert activity_stalls.complete_ms > nested.complete_ms
