"""Draw the text timelines recorded under the site's code blocks as waterfall charts.

`examples.timeline.Timeline` prints one row per call and a total:

    auth          ████████                           0 →   50 ms
    config               ████████                   50 →  100 ms  failed: ServiceError
    total 100 ms

This module reads that text back (`parse_timelines`), works out which calls
set the total (`critical_rows`), and renders an HTML+CSS chart
(`render_chart`) that needs no script, scales to any width and reads as a
list to a screen reader. `WaterfallChartExtension` is a Python-Markdown
extension that puts a chart under every python block whose recorded output
holds a timeline, at build time, so the recorded output stays the one source
of truth. MkDocs and Zensical both load it from `markdown_extensions`:

    markdown_extensions:
      - examples.waterfall_chart

The styles are in docs/assets/waterfall.css.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor

__all__ = [
    "Row",
    "TimelineText",
    "WaterfallChartExtension",
    "critical_rows",
    "makeExtension",
    "parse_timelines",
    "render_chart",
]

# One row as Timeline.__str__ prints it: the label, the bar (█ for a call that
# ran, ░ for one that was cancelled), start and end, then the outcome unless
# the call succeeded ("failed: Error", "cancelled", "running").
_ROW = re.compile(
    r"^(?P<label>[^█░]*[^█░\s])\s{2,}(?P<bar>[ █░]*?)\s*"
    r"(?P<start>\d+) → +(?P<end>\d+) ms(?:  (?P<outcome>\S.*))?$"
)
_TOTAL = re.compile(r"^total (?P<total>\d+) ms$")
# How a line of recorded output is written in a block: inside a docstring, or
# after `#>`.
_OUTPUT_PREFIX = re.compile(r"^\s*(?:#>\s?)?")


@dataclass(frozen=True)
class Row:
    """One call of a recorded timeline."""

    label: str
    start_ms: int
    end_ms: int
    outcome: str = "ok"  # "ok", "failed: <error>", "cancelled" or "running"

    @property
    def failed(self) -> bool:
        return self.outcome.startswith("failed")

    @property
    def cancelled(self) -> bool:
        return self.outcome == "cancelled"

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class TimelineText:
    """A whole recorded timeline: its rows in printed order, and the total."""

    rows: tuple[Row, ...]
    total_ms: int


def parse_timelines(text: str) -> list[TimelineText]:
    """Every timeline printed in `text` (a block's code with its recorded output).

    A timeline is a run of row lines ended by a `total N ms` line; a `total`
    line with no rows right above it is a timeline of no calls.
    """
    found: list[TimelineText] = []
    rows: list[Row] = []
    for line in text.splitlines():
        output = _OUTPUT_PREFIX.sub("", line, count=1).rstrip()
        if total := _TOTAL.match(output):
            found.append(TimelineText(tuple(rows), int(total["total"])))
            rows = []
        elif row := _ROW.match(output):
            cancelled_bar = "░" in row["bar"]
            outcome = row["outcome"] or ("cancelled" if cancelled_bar else "ok")
            rows.append(Row(row["label"], int(row["start"]), int(row["end"]), outcome))
        else:
            rows = []
    return found


def critical_rows(timeline: TimelineText) -> set[int]:
    """Indexes of the rows on a chain of calls that set the total.

    The chain ends with a call that ended last, and each call on it started
    the moment the previous one ended: the handler was waiting for it, so
    making any of them shorter (or starting it earlier) shortens the total.
    Calls that ended at the same moment are all on it.
    """
    if not timeline.rows:
        return set()
    last_end = max(row.end_ms for row in timeline.rows)
    chain = {i for i, row in enumerate(timeline.rows) if row.end_ms == last_end}
    frontier = set(chain)
    while frontier:
        starts = {timeline.rows[i].start_ms for i in frontier if timeline.rows[i].start_ms > 0}
        frontier = {
            i
            for i, row in enumerate(timeline.rows)
            if row.end_ms in starts and i not in chain and row.duration_ms > 0
        }
        chain |= frontier
    return chain


def _percent(ms: int, total_ms: int) -> str:
    return f"{100 * ms / total_ms:.2f}".rstrip("0").rstrip(".") + "%"


def _ticks(total_ms: int) -> list[int]:
    """Round axis marks: 0, a step of 1, 2 or 5 x 10^n, up to the total."""
    if total_ms <= 0:
        return [0]
    step = 1
    while total_ms / step > 5:
        for factor in (2, 5, 10):
            if total_ms / (step * factor) <= 5:
                step *= factor
                break
        else:
            step *= 10
    return list(range(0, total_ms + 1, step))


def _outcome_words(row: Row) -> str:
    if row.failed:
        return row.outcome.replace("failed:", "failed with", 1)
    if row.cancelled:
        return "cancelled"
    if row.outcome == "running":
        return "still running at the end"
    return ""


def render_chart(timeline: TimelineText) -> str:
    """An HTML waterfall chart of one timeline.

    It is a list of calls, so a screen reader reads each call's name, times,
    outcome and whether it is on the critical path as text. The bars and axis
    are decoration, hidden from assistive technology. Failed, cancelled and
    critical calls differ in shape and in words, not only in colour.
    """
    total = timeline.total_ms
    scale = max(total, max((row.end_ms for row in timeline.rows), default=0), 1)
    critical = critical_rows(timeline)
    rows = timeline.rows
    # Calls on the path that ended at the same moment are alternatives: "a or b".
    steps: dict[int, list[str]] = {}
    for i in sorted(critical, key=lambda i: (rows[i].end_ms, rows[i].start_ms, i)):
        steps.setdefault(rows[i].end_ms, []).append(rows[i].label)
    path = " → ".join(" or ".join(labels) for labels in steps.values())
    summary = f"{len(timeline.rows)} call{'s' if len(timeline.rows) != 1 else ''}, total {total} ms"
    failed = sum(row.failed for row in timeline.rows)
    cancelled = sum(row.cancelled for row in timeline.rows)
    if failed:
        summary += f", {failed} failed"
    if cancelled:
        summary += f", {cancelled} cancelled"
    caption = f"Waterfall chart: {summary}."
    if path:
        caption += f" Critical path: {path}."

    items = []
    for index, row in enumerate(timeline.rows):
        classes = ["waterfall__row"]
        marks = []
        if index in critical:
            classes.append("waterfall__row--critical")
            marks.append('<span class="waterfall__mark" aria-hidden="true">◆</span>')
        if row.failed:
            classes.append("waterfall__row--failed")
        if row.cancelled:
            classes.append("waterfall__row--cancelled")
        if row.outcome == "running":
            classes.append("waterfall__row--running")
        outcome = _outcome_words(row)
        critical_words = ", on the critical path" if index in critical else ""
        width = max(row.end_ms - row.start_ms, 0)
        items.append(
            f'<li class="{" ".join(classes)}">'
            f'<span class="waterfall__label">{"".join(marks)}{html.escape(row.label)}</span> '
            f'<span class="waterfall__time">{row.start_ms}–{row.end_ms} ms'
            f"{', ' + html.escape(outcome) if outcome else ''}"
            f'<span class="waterfall__sr">{critical_words}</span></span>'
            f'<span class="waterfall__track" aria-hidden="true">'
            f'<span class="waterfall__bar" style="margin-left: {_percent(row.start_ms, scale)}; '
            f'width: {_percent(width, scale)}"></span></span>'
            "</li>"
        )
    ticks = "".join(
        f'<span class="waterfall__tick" style="left: {_percent(ms, scale)}">{ms}</span>'
        for ms in _ticks(scale)
    )
    keys = []
    if critical:
        keys.append('<span class="waterfall__key waterfall__key--critical">◆ critical path</span>')
    plain = [i for i, row in enumerate(rows) if i not in critical and row.outcome == "ok"]
    if plain:
        keys.append('<span class="waterfall__key">other calls</span>')
    if failed:
        keys.append('<span class="waterfall__key waterfall__key--failed">failed</span>')
    if cancelled:
        keys.append('<span class="waterfall__key waterfall__key--cancelled">cancelled</span>')
    return (
        f'<figure class="waterfall" data-total-ms="{total}">'
        f'<figcaption class="waterfall__caption">{html.escape(caption)}</figcaption>'
        f'<ol class="waterfall__rows">{"".join(items)}</ol>'
        f'<div class="waterfall__axis" aria-hidden="true">{ticks}</div>'
        f'<p class="waterfall__total">total {total} ms</p>'
        f'<p class="waterfall__legend" aria-hidden="true">{"".join(keys)}</p>'
        "</figure>"
    )


# --- The Markdown extension ------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^(?P<indent> *)(?P<marks>`{3,})\s*(?P<info>.*)$")


def _is_python(info: str) -> bool:
    info = info.strip()
    if info.startswith("{"):
        return ".python" in info.strip("{}").split() or ".py" in info.strip("{}").split()
    return info.split(maxsplit=1)[0] in {"python", "py"} if info else False


def _python_blocks(lines: list[str]) -> Iterator[tuple[int, str, str]]:
    """(index of the closing fence, indent, block text) for each python fence."""
    index = 0
    while index < len(lines):
        match = _FENCE_OPEN.match(lines[index])
        if not match:
            index += 1
            continue
        indent, marks = match["indent"], match["marks"]
        closing = re.compile(rf"^ {{0,{len(indent) + 3}}}`{{{len(marks)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if end < len(lines) and _is_python(match["info"]):
            yield end, indent, "\n".join(lines[index + 1 : end])
        index = end + 1


class _ChartPreprocessor(Preprocessor):
    """Insert a chart after every python fence whose text holds a recorded timeline.

    It runs after snippets are included and before fences are stashed, so it
    sees each block's text; the chart goes in at the fence's indentation, so
    inside a content tab it stays in that tab.
    """

    def run(self, lines: list[str]) -> list[str]:
        inserts = [
            (end, indent, timelines)
            for end, indent, text in _python_blocks(lines)
            if (timelines := parse_timelines(text))
        ]
        result = list(lines)
        for end, indent, timelines in reversed(inserts):
            added: list[str] = []
            for timeline in timelines:
                added += ["", indent + self.md.htmlStash.store(render_chart(timeline))]
            result[end + 1 : end + 1] = [*added, ""]
        return result


class WaterfallChartExtension(Extension):
    """Draw each recorded timeline under its python block."""

    def extendMarkdown(self, md: Markdown) -> None:
        # After pymdownx.snippets (32) and whitespace normalisation (30),
        # before pymdownx.superfences stashes the fences (25).
        md.preprocessors.register(_ChartPreprocessor(md), "waterfall_chart", 26)


def makeExtension(**kwargs: object) -> WaterfallChartExtension:
    """The entry point Python-Markdown calls for `examples.waterfall_chart`."""
    return WaterfallChartExtension(**kwargs)
