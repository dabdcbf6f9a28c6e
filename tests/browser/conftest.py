"""Fixtures for the browser tests: the built site on 127.0.0.1 and one Chromium.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright; no browser is
downloaded. Without it these tests skip, unless REQUIRE_BROWSER=1 (as in CI),
which turns the skip into a failure.

The browser lives for this package only: Playwright's sync API keeps an event
loop running in the main thread, which would break `asyncio.run` in the doc
block tests if it outlived this package.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.browser.site import (
    NavPage,
    ServedSite,
    build,
    nav_pages,
    serve,
    site_path,
)
from tests.sitebuild import skip_while_links_are_broken

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Request

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Every request to another host goes to a proxy that is not there, so
    # nothing leaves the machine; loopback is never proxied. The request is
    # still seen (and recorded) before it fails.
    "--proxy-server=http://127.0.0.1:9",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "page(source): a browser test about one page, e.g. "
        '"patterns/strategic-suspense-boundaries.md"; '
        "`make check-page PAGE=<slug>` selects it",
    )


def pytest_itemcollected(item: pytest.Item) -> None:
    """Make a test marked `page(source)` match `-k <slug>`, as check-page filters.

    The marker's Markdown path (which holds the slug) becomes one of the
    item's keywords; a test parametrized over pages has it in its id already.
    """
    for marker in item.iter_markers("page"):
        item.extra_keyword_matches.add(marker.args[0])


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None if they can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install -r requirements/browser.txt)"
    if not CHROMIUM.exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    reason = missing_browser()
    if reason and os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1, but {reason}", pytrace=False)
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def served_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedSite]:
    """The site built for, and served at, http://127.0.0.1:PORT/<site_url path>."""
    skip_while_links_are_broken()
    directory = tmp_path_factory.mktemp("served-site")
    site_dir = directory / "site"
    mount = site_path()
    with serve(site_dir, mount) as origin:
        build(site_dir, site_url=origin + mount)
        yield ServedSite(site_dir, origin, origin + mount, tuple(nav_pages()))


@dataclass
class Watch:
    """Everything a page did that a reader would not want: errors, other origins."""

    origin: str
    label: str = ""
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in {"http", "https", "ws", "wss"} and (
            f"{parts.scheme}://{parts.netloc}" != self.origin
        ):
            self.foreign_requests.append(f"{self.label}: request to another origin: {request.url}")

    def on_failed(self, request: Request) -> None:
        if request.url.startswith(self.origin):
            failure = request.failure or "failed"
            self.failed_requests.append(f"{self.label}: {request.url}: {failure}")

    def problems(self) -> list[str]:
        return self.console_errors + self.foreign_requests + self.failed_requests

    def take_problems(self) -> list[str]:
        """The problems so far, and forget them (for the next page in the same tab)."""
        found = self.problems()
        for recorded in (self.console_errors, self.foreign_requests, self.failed_requests):
            recorded.clear()
        return found


def watch(page: Page, origin: str) -> Watch:
    """Record console errors, uncaught exceptions and requests of `page`."""
    seen = Watch(origin, label=page.url)

    def on_console(message) -> None:  # type: ignore[no-untyped-def]
        # A failed load is recorded with its URL by the request handlers below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen.console_errors.append(f"{seen.label}: console error: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.console_errors.append(f"{seen.label}: {error}"))
    page.on("request", seen.on_request)
    page.on("requestfailed", seen.on_failed)
    page.on(
        "response",
        lambda response: (
            response.status >= 400
            and response.request.resource_type != "document"
            and seen.failed_requests.append(f"{seen.label}: {response.url}: {response.status}")
        ),
    )
    page.on("websocket", lambda ws: seen.on_request(_FakeRequest(ws.url)))
    return seen


@dataclass
class _FakeRequest:
    url: str
    failure: str | None = None


def new_context(browser: Browser, **options: object) -> BrowserContext:
    """A fresh profile (empty localStorage)."""
    context = browser.new_context(**options)
    # A bound on waiting, not a speed check: on a machine whose cores are all
    # busy, a full-page screenshot of a long page takes tens of seconds.
    context.set_default_timeout(90_000)
    return context


@pytest.fixture
def desktop(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh desktop-sized profile for one test."""
    context = new_context(browser, **DESKTOP)
    yield context
    context.close()


@pytest.fixture(scope="module")
def desktop_module(browser: Browser) -> Iterator[BrowserContext]:
    """A desktop-sized profile shared by one test module."""
    context = new_context(browser, **DESKTOP)
    yield context
    context.close()


def screenshot_path(page: NavPage, width: str) -> Path:
    """Where a page's full-length screenshot goes (JPEG: PNG takes twice as long)."""
    return SCREENSHOTS / f"{page.slug}-{width}.jpg"


@dataclass
class Visit:
    problems: list[str]
    overflow: list[str]
    screenshot: Path


# Lists what sticks out past the right edge of the screen, unless an ancestor
# scrolls or clips it (a code block that scrolls inside itself is fine).
OVERFLOW_JS = """
() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  if (root.scrollWidth <= width) return [];
  const clips = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(p).overflowX)) {
        return true;
      }
    }
    return false;
  };
  const name = (el) =>
    el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.classList.length ? "." + [...el.classList].join(".") : "");
  const culprits = [...document.body.querySelectorAll("*")]
    .filter((el) => el.getBoundingClientRect().right > width + 1 && !clips(el))
    .slice(0, 5)
    .map((el) => `${name(el)} ends at ${Math.round(el.getBoundingClientRect().right)} px`);
  return [`the page is ${root.scrollWidth} px wide on a ${width} px screen`, ...culprits];
}
"""


@pytest.fixture(scope="package")
def tour(browser: Browser, served_site: ServedSite) -> dict[tuple[str, str], Visit]:
    """Every nav page opened once at each width: problems, overflow, a screenshot.

    At desktop width each page waits for the network to go quiet, so a request
    made after `load` (a search index, a script's fetch) is seen; the phone
    pass waits for `load` only, to keep the suite fast.
    """
    # Only this tour's own screenshots: other tests keep theirs here too.
    SCREENSHOTS.mkdir(exist_ok=True)
    for old in SCREENSHOTS.glob("*.jpg"):
        old.unlink()
    visits = {}
    for width, options in WIDTHS.items():
        context = new_context(browser, **options)
        page = context.new_page()
        seen = watch(page, served_site.origin)
        for nav_page in served_site.pages:
            seen.label = f"{nav_page} ({width})"
            response = page.goto(
                served_site.url(nav_page),
                wait_until="networkidle" if width == "desktop" else "load",
            )
            if response is None or response.status != 200:
                status = response.status if response else "no response"
                seen.failed_requests.append(f"{seen.label}: page answered {status}")
            overflow = page.evaluate(OVERFLOW_JS) if width == "phone" else []
            shot = screenshot_path(nav_page, width)
            page.screenshot(path=shot, full_page=True, quality=80)
            visits[nav_page.source, width] = Visit(seen.take_problems(), overflow, shot)
        context.close()
    return visits
