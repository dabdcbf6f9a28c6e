"""Waterfall charts: reading printed timelines back, the critical path, the HTML, the extension."""

from __future__ import annotations

import re

import markdown

from examples.timeline import Span, Timeline
from examples.waterfall_chart import (
    Row,
    TimelineText,
    critical_rows,
    parse_timelines,
    render_chart,
)


def printed(spans: list[Span], total_s: float) -> str:
    """What `print(timeline)` writes for these spans, from the real printer."""
    timeline = Timeline()
    timeline._origin = 0.0
    timeline._closed_at = total_s
    timeline.spans = spans
    return str(timeline)


def span(label: str, start: float, end: float | None, outcome: str = "ok") -> Span:
    return Span(label=label, service=label, start=start, end=end, outcome=outcome)


MIXED = printed(
    [
        span("auth", 0.0, 0.05),
        span("config", 0.0, 0.02, "failed: ServiceError"),
        span("user_data(1)", 0.05, 0.15),
        span("stocks", 0.0, 0.02, "cancelled"),
        span("widget", 0.03, None, "running"),
    ],
    total_s=0.15,
)


def test_reads_back_what_the_timeline_prints() -> None:
    (timeline,) = parse_timelines(MIXED)
    assert timeline.total_ms == 150
    by_label = {row.label: row for row in timeline.rows}
    assert by_label["auth"] == Row("auth", 0, 50)
    assert by_label["config"] == Row("config", 0, 20, "failed: ServiceError")
    assert by_label["config"].failed and not by_label["config"].cancelled
    assert by_label["stocks"].cancelled
    assert by_label["user_data(1)"] == Row("user_data(1)", 50, 150)
    assert by_label["widget"] == Row("widget", 30, 150, "running")
    assert len(timeline.rows) == 5


def test_reads_both_ways_output_is_recorded_in_a_block() -> None:
    text = printed([span("auth", 0.0, 0.05), span("config", 0.05, 0.1)], total_s=0.1)
    docstring = (
        "    print(timeline)\n    " + '"""\n    ' + text.replace("\n", "\n    ") + '\n    """'
    )
    comments = "print(timeline)\n" + "\n".join("#> " + line for line in text.splitlines())
    assert parse_timelines(docstring) == parse_timelines(comments) == parse_timelines(text)
    assert len(parse_timelines(text + "\n" + text)) == 2


def test_text_that_is_not_a_timeline_is_ignored() -> None:
    assert parse_timelines('print("took 150 ms")\n#> took 150 ms') == []
    # Rows broken off by other output do not join the next timeline.
    text = printed([span("auth", 0.0, 0.05)], total_s=0.05)
    first_row, total = text.splitlines()
    (timeline,) = parse_timelines(f"{first_row}\n#> something else\n{total}")
    assert timeline.rows == ()


def test_critical_path_of_a_chain_is_every_call() -> None:
    timeline = TimelineText(
        (Row("auth", 0, 50), Row("config", 50, 100), Row("user_data(1)", 100, 200)), 200
    )
    assert critical_rows(timeline) == {0, 1, 2}


def test_critical_path_skips_calls_that_did_not_hold_anything_up() -> None:
    timeline = TimelineText(
        (
            Row("auth", 0, 50),
            Row("config", 0, 30),  # ended early: nothing waited for it
            Row("user_data(1)", 50, 150),
            Row("stocks", 0, 20, "cancelled"),
        ),
        150,
    )
    assert critical_rows(timeline) == {0, 2}


def test_critical_path_includes_a_failure_that_ended_the_run() -> None:
    timeline = TimelineText((Row("auth", 0, 50, "failed: Unauthorized"),), 50)
    assert critical_rows(timeline) == {0}
    assert critical_rows(TimelineText((), 0)) == set()


def test_chart_marks_failed_cancelled_and_critical_calls_in_words() -> None:
    (timeline,) = parse_timelines(MIXED)
    chart = render_chart(timeline)
    rows = re.findall(r'<li class="([^"]+)">(.*?)</li>', chart)
    assert len(rows) == 5
    text = {re.sub(r"<[^>]+>", "", body).split("◆")[-1]: classes for classes, body in rows}
    assert "waterfall__row--failed" in text["config 0–20 ms, failed with ServiceError"]
    assert "waterfall__row--cancelled" in text["stocks 0–20 ms, cancelled"]
    assert "waterfall__row--critical" in text["user_data(1) 50–150 ms, on the critical path"]
    assert (
        "waterfall__row--running"
        in text["widget 30–150 ms, still running at the end, on the critical path"]
    )
    caption = re.search(r"<figcaption[^>]*>(.*?)</figcaption>", chart)
    assert caption is not None
    assert caption[1] == (
        "Waterfall chart: 5 calls, total 150 ms, 1 failed, 1 cancelled. "
        "Critical path: auth → widget or user_data(1)."
    )
    assert 'data-total-ms="150"' in chart
    # Bars sit on the millisecond axis: user_data starts at a third of 150 ms.
    assert "margin-left: 33.33%; width: 66.67%" in chart


def test_extension_puts_each_chart_under_its_block_inside_its_tab() -> None:
    text = printed([span("auth", 0.0, 0.05)], total_s=0.05)
    recorded = "\n".join("    #> " + line for line in text.splitlines())
    page = (
        'Before.\n\n=== "asyncio"\n\n    ```python\n    print(timeline)\n'
        f"{recorded}\n    ```\n\n"
        '=== "AnyIO"\n\n    ```python\n    print(1)\n    ```\n\n'
        "```text\n" + text + "\n```\n\nAfter.\n"
    )
    converted = markdown.markdown(
        page,
        extensions=["pymdownx.superfences", "pymdownx.tabbed", "examples.waterfall_chart"],
        extension_configs={"pymdownx.tabbed": {"alternate_style": True}},
    )
    assert converted.count('<figure class="waterfall"') == 1, "one chart: text blocks get none"
    first_tab, _second_tab = converted.split('<div class="tabbed-block">')[1:]
    assert '<figure class="waterfall"' in first_tab
    assert first_tab.index("</code></pre>") < first_tab.index('<figure class="waterfall"')
    assert "<p><figure" not in converted
