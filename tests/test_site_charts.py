"""Every timeline recorded under a python block has exactly one chart below it in the built site.

Timelines are found in the built HTML by their `total N ms` line, independently
of the chart extension's own parser; a chart belongs to the python block
before it. A second build, of a copy whose recorded output was changed, shows
that the chart follows the recorded output.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_examples import find_examples

from tests.browser.site import NavPage, built_html, copy_project, nav_pages
from tests.harness import DOCS
from tests.sitebuild import build_site

_PIECE = re.compile(
    r'<div class="language-python highlight">(?P<code>.*?)</pre></div>'
    r'|<figure class="waterfall" data-total-ms="(?P<chart_total>\d+)">(?P<chart>.*?)</figure>',
    re.S,
)
_TOTAL_LINE = re.compile(r"^\s*(?:#>\s*)?total (\d+) ms\s*$", re.M)
_TAG = re.compile(r"<[^>]+>")


@dataclass
class Block:
    number: int  # 1-based, in page order
    totals: list[int]  # the `total N ms` of each timeline recorded in it
    charts: list[int]  # data-total-ms of each chart that follows it


def blocks_and_charts(page_html: str) -> tuple[list[Block], int]:
    """The page's python blocks with the charts after each; and charts before any block."""
    blocks: list[Block] = []
    orphans = 0
    for piece in _PIECE.finditer(page_html):
        if piece["code"] is not None:
            code = html.unescape(_TAG.sub("", piece["code"]))
            totals = [int(total) for total in _TOTAL_LINE.findall(code)]
            blocks.append(Block(len(blocks) + 1, totals, []))
        elif blocks:
            blocks[-1].charts.append(int(piece["chart_total"]))
        else:
            orphans += 1
    return blocks, orphans


def chart_problems(site: Path, page: NavPage) -> list[str]:
    blocks, orphans = blocks_and_charts(built_html(site, page))
    problems = [f"docs/{page}: {orphans} chart(s) before the first python block"] * bool(orphans)
    for block in blocks:
        if block.totals != block.charts:
            problems.append(
                f"docs/{page}, python block {block.number}: recorded timelines with totals "
                f"{block.totals} but charts with totals {block.charts} below it; "
                "check examples/waterfall_chart.py reads this timeline"
            )
    return problems


@pytest.fixture
def site(built_site: Path) -> Path:
    """The run's one build of the site (tests/conftest.py); the charts are read from it."""
    return built_site


def test_every_recorded_timeline_has_one_chart(site: Path) -> None:
    problems = [problem for page in nav_pages() for problem in chart_problems(site, page)]
    assert not problems, "\n".join(problems)
    timelines = sum(
        len(block.totals)
        for page in nav_pages()
        for block in blocks_and_charts(built_html(site, page))[0]
    )
    recorded = sum(
        len(_TOTAL_LINE.findall(example.source))
        for path in sorted(DOCS.rglob("*.md"))
        for example in find_examples(path)
    )
    assert timelines == recorded, (
        f"{timelines} timelines in built python blocks, {recorded} in the python blocks of docs/"
    )
    assert timelines > 0


def first_chart(site: Path, page: NavPage) -> str:
    match = re.search(r'<figure class="waterfall".*?</figure>', built_html(site, page), re.S)
    assert match, f"docs/{page}: no chart"
    return match[0]


def test_a_changed_recorded_output_changes_the_chart(site: Path, tmp_path: Path) -> None:
    """Doctor the first recorded timeline of 1.1 in a copy: its chart follows."""
    (page,) = [p for p in nav_pages() if p.source == "patterns/prevent-waterfall-chains.md"]
    config = copy_project(tmp_path)
    source = tmp_path / "docs" / page.source
    text = source.read_text()
    row = re.search(r"^( *)user_data\(1\) +[█ ]+ 100 →  200 ms\n +total 200 ms$", text, re.M)
    assert row, f"docs/{page}: the first waterfall timeline is not where this test expects it"
    indent = row[1]
    doctored = (
        f"{indent}user_data(1)                 ███████████████   100 →  260 ms  failed: Timeout\n"
        f"{indent}total 260 ms"
    )
    source.write_text(text[: row.start()] + doctored + text[row.end() :])
    doctored_site = tmp_path / "site"
    result = build_site(doctored_site, config, check_rendered_links=False)
    assert result.returncode == 0, result.stderr

    before, after = first_chart(site, page), first_chart(doctored_site, page)
    assert 'data-total-ms="200"' in before and "100–200 ms<" in before
    assert 'data-total-ms="260"' in after
    assert "100–260 ms, failed with Timeout" in after
    assert "waterfall__row--failed" in after and "waterfall__row--failed" not in before
