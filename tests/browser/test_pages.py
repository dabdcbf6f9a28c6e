"""Every page in the nav, opened in Chromium at desktop and phone widths."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import WIDTHS, Visit, screenshot_path, watch
from tests.browser.site import NavPage, ServedSite, nav_pages

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

PAGES = nav_pages()


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_page_loads_without_errors_or_other_origins(
    page: NavPage, tour: dict[tuple[str, str], Visit]
) -> None:
    problems = [problem for width in WIDTHS for problem in tour[page.source, width].problems]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_page_fits_a_phone_screen(page: NavPage, tour: dict[tuple[str, str], Visit]) -> None:
    overflow = tour[page.source, "phone"].overflow
    assert not overflow, f"{page} scrolls sideways on a phone: " + "; ".join(overflow)


def test_every_page_has_screenshots(tour: dict[tuple[str, str], Visit]) -> None:
    expected = {screenshot_path(page, width) for page in PAGES for width in WIDTHS}
    missing = sorted(str(path) for path in expected if not path.is_file())
    assert not missing, "no screenshot: " + ", ".join(missing)
    empty = sorted(str(path) for path in expected if path.stat().st_size < 1000)
    assert not empty, "empty screenshot: " + ", ".join(empty)


def test_sitemap_lists_exactly_the_nav_pages(served_site: ServedSite) -> None:
    sitemap = (served_site.directory / "sitemap.xml").read_text()
    listed = {url for url in sitemap.split("<loc>")[1:]}
    listed = {url.split("</loc>")[0] for url in listed}
    assert listed == {served_site.url(page) for page in served_site.pages}


def test_missing_page_shows_styled_404(desktop: BrowserContext, served_site: ServedSite) -> None:
    page = desktop.new_page()
    seen = watch(page, served_site.origin)
    response = page.goto(served_site.base + "no/such/page/", wait_until="networkidle")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "404 - Not found"
    # Styled: Material's stylesheet applied (its header is a fixed bar with a colour).
    header = page.locator(".md-header").evaluate("el => getComputedStyle(el).position")
    assert header in {"sticky", "fixed"}, f"404 page is unstyled (header position {header})"
    assert not seen.problems(), "\n".join(seen.problems())
