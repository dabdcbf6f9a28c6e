"""Linked content tabs: picking AnyIO once shows AnyIO on every page, after
instant navigation and after a reload (Material keeps the choice in localStorage)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.browser.site import NavPage, ServedSite, built_html, tab_label_sets

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

PAIR = ["asyncio", "AnyIO"]

# For each asyncio|AnyIO tab set on the page, the label of the tab shown.
SHOWN_TABS_JS = """
() => [...document.querySelectorAll(".tabbed-set")].flatMap((set) => {
  const labels = [...set.querySelectorAll(":scope > .tabbed-labels > label")];
  const texts = labels.map((label) => label.innerText.trim());
  if (texts.join("|") !== "asyncio|AnyIO") return [];
  const checked = set.querySelector(":scope > input:checked");
  const shown = labels.find((label) => label.htmlFor === checked.id);
  return [shown.innerText.trim()];
})
"""


def pages_with_tab_pair(site: ServedSite) -> list[NavPage]:
    return [page for page in site.pages if PAIR in tab_label_sets(built_html(site.directory, page))]


def shown_tabs(page: Page) -> list[str]:
    return page.evaluate(SHOWN_TABS_JS)


def follow_nav_link(page: Page, site: ServedSite, target: NavPage) -> None:
    """Click the target's link in the sidebar, as a reader would."""
    sidebar = page.locator(".md-sidebar--primary")
    sidebar.get_by_role("link", name=target.title, exact=True).first.click()
    page.wait_for_url(site.url(target))
    page.locator("h1").first.wait_for()


def test_anyio_tab_is_remembered_on_every_page(
    desktop: BrowserContext, served_site: ServedSite
) -> None:
    tab_pages = pages_with_tab_pair(served_site)
    assert tab_pages, "no page has an asyncio|AnyIO tab pair"
    first, *others = tab_pages
    if not others:  # still cross a navigation: go elsewhere and come back
        others = [next(page for page in served_site.pages if page != first), first]

    page = desktop.new_page()
    page.goto(served_site.url(first))
    assert set(shown_tabs(page)) == {"asyncio"}, f"{first}: asyncio is not the default tab"

    page.locator(".tabbed-labels > label", has_text="AnyIO").first.click()
    assert set(shown_tabs(page)) == {"AnyIO"}, f"{first}: not every tab set switched to AnyIO"

    # A full page load would drop this marker; instant navigation keeps it.
    page.evaluate("window.stillTheSameDocument = true")
    for other in others:
        follow_nav_link(page, served_site, other)
        assert page.evaluate("window.stillTheSameDocument === true"), (
            f"following the link to {other} reloaded the page: instant navigation is off"
        )
        shown = shown_tabs(page)
        assert set(shown) <= {"AnyIO"}, f"{other}: shows {shown} after picking AnyIO"

    page.reload()
    shown = shown_tabs(page)
    assert set(shown) <= {"AnyIO"}, f"{others[-1]}: shows {shown} after a reload"
