"""Offline search finds each pattern page by its key words.

The search index is built into the site and searched in the browser, so this
also shows that search needs no other origin. A page that is still a stub is
skipped, not failed, until it has text to find.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.browser.site import ServedSite, built_html, nav_pages, word_count

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

WATERFALLS = "patterns/prevent-waterfall-chains.md"
PARALLELIZE = "patterns/parallelize-independent-operations.md"
DATA_FETCHING = "patterns/parallel-data-fetching.md"
DEDUPLICATION = "patterns/per-request-deduplication.md"

# What a reader types, and the pages of which at least one must be among the
# first results.
EXPECTED = {
    "waterfall": {WATERFALLS},
    "allSettled": {PARALLELIZE, WATERFALLS},
    "TaskGroup": {PARALLELIZE, WATERFALLS},
    "cache": {DEDUPLICATION},
    "lru_cache": {DEDUPLICATION},
    "Jinja2": {DATA_FETCHING},
}
TOP = 3  # how many result pages count as "found"
STUB_WORDS = 300  # a page with fewer words is still being written


@pytest.fixture(scope="module")
def search_page(desktop_module: BrowserContext, served_site: ServedSite) -> Page:
    page = desktop_module.new_page()
    page.goto(served_site.base)
    # The index loads in a web worker; a query typed before it is ready is lost.
    page.wait_for_function(
        "!document.querySelector('.md-search-result__meta').textContent.includes('Initializing')"
    )
    return page


# True once the results on screen are those of the query in the box.
RESULTS_FOR_JS = """
(query) => {
  const meta = document.querySelector(".md-search-result__meta").textContent;
  const links = [...document.querySelectorAll("a.md-search-result__link")];
  const terms = links.map((link) => new URL(link.href).searchParams.get("h"));
  return meta.includes("No matching") || terms.includes(query.toLowerCase());
}
"""


def result_pages(page: Page, site: ServedSite, query: str) -> list[str]:
    """The pages the search box lists for `query`, best first, as docs paths."""
    box = page.locator("input.md-search__input")
    box.fill(query)
    box.press("End")  # Material reads the query on keyup
    page.wait_for_function(RESULTS_FOR_JS, arg=query)
    links = page.locator("li.md-search-result__item > a.md-search-result__link")
    by_url = {site.url(nav_page): nav_page.source for nav_page in site.pages}
    found = []
    for href in links.evaluate_all("links => links.map(link => link.href)"):
        parts = urlsplit(href)
        source = by_url.get(f"{parts.scheme}://{parts.netloc}{parts.path}", href)
        if source not in found:
            found.append(source)
    return found


@pytest.mark.parametrize(("query", "expected"), EXPECTED.items(), ids=list(EXPECTED))
def test_search_finds_the_pattern_page(
    query: str, expected: set[str], search_page: Page, served_site: ServedSite
) -> None:
    pages = {page.source: page for page in nav_pages()}
    written = {
        source
        for source in expected
        if word_count(built_html(served_site.directory, pages[source])) >= STUB_WORDS
    }
    if not written:
        pytest.skip(f"{', '.join(sorted(expected))}: still a stub, nothing to find yet")
    found = result_pages(search_page, served_site, query)
    assert set(found[:TOP]) & written, (
        f"searching {query!r} should list {' or '.join(sorted(written))} "
        f"among the first {TOP} results; it lists {found}"
    )
