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

from tests import pagecheck
from tests.harness import DOCS, relative
from tests.pagecheck import block_titled, section, table_differences, table_rows

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


def at_block(title: str) -> str:
    """`docs/patterns/<page>.md:LINE: block "<title>"`, to start a message with."""
    return f'{relative(PAGE)}:{block_titled(PAGE, title).start_line}: block "{title}"'


def recorded_lines(title: str) -> list[str]:
    """What the block printed, as recorded under its prints, in order."""
    return pagecheck.recorded_lines(PAGE, title)


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
    assert found, f"{at_block(title)} recorded no response: print(recorder) in it"
    return found


def ms(values: tuple[int, ...]) -> str:
    """`(100, 200)` as the table writes it: `100, 200 ms`."""
    return ", ".join(str(value) for value in dict.fromkeys(values)) + " ms"


def test_the_performance_table_is_what_the_blocks_recorded() -> None:
    rows = table_rows(section(PAGE, "## Performance"))
    first_table = rows[1 : rows.index(next(r for r in rows if r[1] == "Fetches"))]
    assert first_table, f"{relative(PAGE)}: the Performance table has no rows"
    stated, actual = {}, {}
    for label, first_byte, parts_at, complete in first_table:
        titles = re.findall(r"`([^`]+)`", label)
        assert len(titles) == 1, (
            f"{relative(PAGE)}: Performance row {label!r} names no block: put its title in `...`"
        )
        response = responses(titles[0])[0]
        stated[label] = (first_byte, parts_at, complete)
        actual[label] = (
            f"{response.first_byte_ms} ms",
            ms(response.parts_ms),
            f"{response.complete_ms} ms",
        )
    problems = table_differences(PAGE, "Performance", stated, actual)
    assert not problems, problems


def performance_table(header: str) -> list[list[str]]:
    """The rows of the Performance table whose first header cell starts with `header`."""
    rows = table_rows(section(PAGE, "## Performance"))
    headers = [i for i, row in enumerate(rows) if row[1] in ("Fetches", "Missing article")]
    starts = [i for i in headers if rows[i][0].startswith(header)]
    assert starts, f"{relative(PAGE)}: the Performance section has no table {header!r}: add it"
    end = next((i for i in headers if i > starts[0]), len(rows))
    return rows[starts[0] + 1 : end]


def test_the_shared_fetch_table_is_what_the_block_recorded() -> None:
    stated = {row[0]: tuple(row[1:]) for row in performance_table("Sales table and summary")}
    line = re.compile(r"^(.+): fetches (\d+), placeholders (\d+), complete (\d+) ms$")
    found = [match.groups() for text in recorded_lines(SHARED) if (match := line.match(text))]
    actual = {
        name.capitalize(): (fetches, filled, f"{ms} ms") for name, fetches, filled, ms in found
    }
    problems = table_differences(PAGE, "Performance", stated, actual)
    assert not problems, problems
    assert int(actual["Two boundaries"][0]) > int(actual["One boundary"][0])


def test_the_short_answer_table_is_what_the_blocks_printed() -> None:
    line = re.compile(r"^first byte (\d+) ms, sales (\d+) ms$")

    def figures(title: str) -> tuple[str, str]:
        [match] = [m for text in recorded_lines(title) if (m := line.match(text))]
        return f"{match[1]} ms", f"{match[2]} ms"

    before, after = figures("Before"), figures("After (asyncio)")
    assert figures("After (AnyIO)") == after, (
        f"{at_block('After (AnyIO)')} printed other figures than the asyncio tab: make them agree"
    )
    rows = {row[0]: tuple(row[1:]) for row in table_rows(section(PAGE, "## The short answer"))[1:]}
    expected = {
        "First byte (headers and frame)": (before[0], after[0]),
        "Sales part": (before[1], after[1]),
    }
    problems = table_differences(PAGE, "The short answer", rows, expected)
    assert not problems, problems
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
        assert match, f"{at_block(ARTICLE)} printed an unexpected line {text!r}: update this test"
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
    problems = table_differences(PAGE, "Performance", stated, actual)
    assert not problems, problems


def test_a_streamed_page_cannot_answer_404_and_moving_the_boundary_can() -> None:
    statuses = {path: status for path, (status, _, _) in article_lines().items()}
    assert statuses == {
        "/awaited/waterfalls": 200,
        "/awaited/no-such-post": 404,
        "/streamed/waterfalls": 200,
        "/streamed/no-such-post": 200,
        "/article-first/waterfalls": 200,
        "/article-first/no-such-post": 404,
    }, f"{at_block(ARTICLE)} printed other statuses than the page says: correct the prose"
    printed = article_lines()
    # The fix sends its first byte before the page that awaits everything.
    assert printed["/article-first/waterfalls"][1] < printed["/awaited/waterfalls"][1]


def test_nested_parts_follow_their_outer_part_and_fall_with_it() -> None:
    nested_title, failing_title = (
        "Nested boundaries: dashboard, then its panels",
        "Failing parts: each sends its fallback",
    )
    nested = responses(nested_title)[0]
    assert nested.parts == 3 and nested.parts_ms == tuple(sorted(nested.parts_ms)), (
        f"{at_block(nested_title)} no longer sends three parts in turn: correct the prose"
    )
    analytics_down, user_down, activity_stalls = responses(failing_title)
    assert analytics_down.parts == 3, f"{at_block(failing_title)}: analytics down, 3 parts"
    assert user_down.parts == 1, (
        f"{at_block(failing_title)}: with the user down, only the dashboard's fallback is sent"
    )
    assert activity_stalls.complete_ms > nested.complete_ms, (
        f"{at_block(failing_title)}: the stalled activity should end at its deadline"
    )
