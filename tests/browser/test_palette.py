"""The light/dark toggle switches the colour scheme and the choice survives navigation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.browser.site import ServedSite

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page


def scheme(page: Page) -> str | None:
    return page.locator("body").get_attribute("data-md-color-scheme")


def toggle(page: Page) -> None:
    """Click whichever toggle button is showing."""
    page.locator("form[data-md-component=palette] label:not([hidden])").click()


def test_light_dark_toggle(desktop: BrowserContext, served_site: ServedSite) -> None:
    home, other, *_ = served_site.pages
    page = desktop.new_page()
    page.goto(served_site.url(home))
    assert scheme(page) == "default"

    toggle(page)
    assert scheme(page) == "slate"

    page.goto(served_site.url(other))
    assert scheme(page) == "slate", f"{other} forgot the dark scheme"

    toggle(page)
    assert scheme(page) == "default"
