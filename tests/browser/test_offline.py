"""The built site loads nothing from another origin: checked on its HTML and CSS,
without a browser. The browser tests check the same at run time."""

from __future__ import annotations

import pytest

from tests.browser.offline import (
    foreign_fetches_in_css,
    foreign_fetches_in_html,
    foreign_fetches_in_site,
    is_foreign,
)
from tests.browser.site import ServedSite

PAGE = "https://example.org/docs/patterns/page/"


def test_built_site_fetches_nothing_from_another_origin(served_site: ServedSite) -> None:
    problems = foreign_fetches_in_site(served_site.directory, served_site.base)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "url",
    [
        "../../assets/main.css",
        "/docs/assets/main.css",
        "https://example.org/other/path.js",
        "data:image/svg+xml;base64,AAAA",
        "#top",
        "mailto:someone@example.org",
    ],
)
def test_own_origin_and_non_network_urls_are_allowed(url: str) -> None:
    assert not is_foreign(url, PAGE)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.jsdelivr.net/npm/mermaid/dist/mermaid.min.js",
        "//fonts.googleapis.com/css?family=Roboto",
        "http://example.org/docs/",  # another scheme is another origin
        "https://example.org:8443/docs/",  # so is another port
    ],
)
def test_other_origins_are_foreign(url: str) -> None:
    assert is_foreign(url, PAGE)


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ('<script src="https://cdn.example.com/x.js"></script>', "<script src>"),
        ('<link rel="stylesheet" href="https://fonts.googleapis.com/css">', "stylesheet"),
        ('<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>', "preconnect"),
        ('<img srcset="a.png 1x, https://img.example.com/b.png 2x">', "<img srcset>"),
        ('<iframe src="https://www.youtube.com/embed/x"></iframe>', "<iframe src>"),
        ("<style>@import url('https://fonts.googleapis.com/css');</style>", "<style>"),
        ("<style>@import 'https://fonts.googleapis.com/css';</style>", "<style>"),
        ('<div style="background: url(https://img.example.com/bg.png)"></div>', "style"),
        (
            '<a href="https://github.com/o/r" class="md-source" data-md-component="source">',
            "repository widget",
        ),
    ],
)
def test_each_way_of_fetching_is_caught(snippet: str, expected: str) -> None:
    found = foreign_fetches_in_html(snippet, PAGE)
    assert len(found) == 1 and expected in found[0], found


def test_links_a_reader_clicks_are_not_fetches() -> None:
    snippet = (
        '<a href="https://docs.python.org/3/library/asyncio.html">asyncio</a>'
        '<link rel="canonical" href="https://elsewhere.example/">'
        '<a href="https://github.com/o/r/edit/main/docs/index.md" rel="edit">edit</a>'
    )
    assert foreign_fetches_in_html(snippet, PAGE) == []


def test_css_urls_are_checked() -> None:
    css = 'body{background:url("data:image/png;base64,AA")} @font-face{src:url(https://f.example/x.woff2)}'
    assert foreign_fetches_in_css(css, PAGE + "style.css") == ["https://f.example/x.woff2 (css)"]
