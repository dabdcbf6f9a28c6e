"""What a browser does with a page streamed by `examples.streaming`, in Chromium.

Page 1.3 (docs/patterns/strategic-suspense-boundaries.md) says what a reader
sees of a streamed page; these tests load such pages from Uvicorn on
127.0.0.1 and read what Chromium shows:

- the frame is shown while a part is still on its way, with the placeholder
  where the part goes; then the part replaces it;
- a template and its script sent in one chunk or in two (`StreamedPage`, or
  a `StreamingResponse` generator) give the same page;
- nested parts land in their outer part's HTML; a dropped nested part
  leaves no error, while a fill script for a missing placeholder fails;
- with scripts off, the part's HTML is in the document, inside its
  template, and the page shows the placeholder.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from examples.serve import serve
from examples.streaming import FILL_SCRIPT, StreamedPage, StreamedPart
from tests.browser.conftest import DESKTOP, new_context, watch

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

# `make check-page PAGE=strategic-suspense-boundaries` runs this file too.
pytestmark = pytest.mark.page("patterns/strategic-suspense-boundaries.md")

SHELL = '<h1>Shop</h1><div id="sales">Loading…</div><p>© Shop</p>'
DASHBOARD_SHELL = '<h1>Shop</h1><div id="dashboard">Loading the dashboard…</div>'
# Released by the test once it has seen the frame without the part.
sales_gate = threading.Event()


async def gated_sales() -> str:
    await anyio.to_thread.run_sync(sales_gate.wait, abandon_on_cancel=True)
    return "<p>sales report</p>"


async def sales() -> str:
    await anyio.sleep(0.02)
    return "<p>sales report</p>"


async def dashboard() -> str:
    await anyio.sleep(0.05)
    return '<h2>Hello, Ada</h2><div id="analytics">Loading analytics…</div>'


async def analytics() -> str:
    return "<p>1200 views</p>"  # ready before its outer part: it waits


async def unavailable() -> str:
    await anyio.sleep(0.05)
    raise RuntimeError("user service down")


async def two_chunks(request: Request) -> StreamingResponse:
    """The template and its script in two chunks, as a generator yields them."""

    async def body() -> AsyncIterator[str]:
        yield SHELL + FILL_SCRIPT
        html = await sales()
        yield f'<template id="sales-ready">{html}</template>'
        yield '<script>fillPart("sales")</script>'

    return StreamingResponse(body(), media_type="text/html")


async def fill_missing(request: Request) -> StreamingResponse:
    """A fill script for a placeholder the page does not have."""

    async def body() -> AsyncIterator[str]:
        yield SHELL + FILL_SCRIPT
        yield '<template id="ghost-ready"><p>boo</p></template><script>fillPart("ghost")</script>'

    return StreamingResponse(body(), media_type="text/html")


def page_routes() -> list[Route]:
    gated = StreamedPage(SHELL, StreamedPart("sales", gated_sales, fallback="<p>-</p>"))
    one_chunk = StreamedPage(SHELL, StreamedPart("sales", sales, fallback="<p>-</p>"))

    def nested(outer: StreamedPart) -> StreamedPage:
        inner = StreamedPart("analytics", analytics, fallback="<p>-</p>", inside="dashboard")
        return StreamedPage(DASHBOARD_SHELL, outer, inner)

    return [
        Route("/gated", gated, methods=["GET"]),
        Route("/one-chunk", one_chunk, methods=["GET"]),
        Route("/two-chunks", two_chunks),
        Route("/fill-missing", fill_missing),
        Route(
            "/nested",
            nested(StreamedPart("dashboard", dashboard, fallback="<p>-</p>")),
            methods=["GET"],
        ),
        Route(
            "/dropped",
            nested(StreamedPart("dashboard", unavailable, fallback="<p>Unavailable</p>")),
            methods=["GET"],
        ),
    ]


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    """The pages above, served by Uvicorn on 127.0.0.1 for this module."""
    app = Starlette(routes=page_routes())
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(serve(app)) as base_url,
    ):
        try:
            yield base_url
        finally:
            sales_gate.set()  # a part still waiting must not hold the server


@pytest.fixture
def scripts_off(browser: Browser) -> Iterator[BrowserContext]:
    context = new_context(browser, java_script_enabled=False, **DESKTOP)
    yield context
    context.close()


def shown(context: BrowserContext, origin: str, path: str) -> tuple[str, list[str]]:
    """The text the page at `path` shows once loaded, and its errors."""
    tab = context.new_page()
    seen = watch(tab, origin)
    tab.goto(origin + path, wait_until="load")
    text = visible_text(tab)
    tab.close()
    return text, seen.problems()


def visible_text(tab: Page) -> str:
    """The page's rendered text, one line per block, joined with ` / `."""
    text = tab.inner_text("body")
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def test_the_frame_is_shown_before_the_part_then_the_part_replaces_it(
    desktop: BrowserContext, origin: str
) -> None:
    sales_gate.clear()
    tab = desktop.new_page()
    tab.goto(origin + "/gated", wait_until="commit")
    # The response is not over: the part waits for the gate.
    tab.wait_for_selector("#sales")
    assert visible_text(tab) == "Shop / Loading… / © Shop"
    assert tab.evaluate("document.readyState") == "loading"
    sales_gate.set()
    tab.wait_for_load_state("load")
    assert visible_text(tab) == "Shop / sales report / © Shop"
    assert tab.evaluate("document.querySelectorAll('template, #sales').length") == 0
    tab.close()


def test_one_chunk_or_two_give_the_same_page(desktop: BrowserContext, origin: str) -> None:
    one = shown(desktop, origin, "/one-chunk")
    two = shown(desktop, origin, "/two-chunks")
    assert one == two == ("Shop / sales report / © Shop", [])


def test_a_nested_part_fills_its_outer_parts_placeholder(
    desktop: BrowserContext, origin: str
) -> None:
    assert shown(desktop, origin, "/nested") == ("Shop / Hello, Ada / 1200 views", [])


def test_a_dropped_nested_part_leaves_no_error(desktop: BrowserContext, origin: str) -> None:
    assert shown(desktop, origin, "/dropped") == ("Shop / Unavailable", [])


def test_filling_a_missing_placeholder_fails_in_the_browser(
    desktop: BrowserContext, origin: str
) -> None:
    """Why StreamedPage drops a nested part whose outer part made no placeholder."""
    text, problems = shown(desktop, origin, "/fill-missing")
    assert text == "Shop / Loading… / © Shop"
    assert len(problems) == 1, problems
    assert "Cannot read properties of null (reading 'replaceWith')" in problems[0]


def test_without_scripts_the_part_is_in_the_document_but_not_shown(
    scripts_off: BrowserContext, origin: str
) -> None:
    tab = scripts_off.new_page()
    tab.goto(origin + "/one-chunk", wait_until="load")
    assert "<p>sales report</p>" in tab.content()
    assert visible_text(tab) == "Shop / Loading… / © Shop"
    tab.close()
