"""Every code block's copy button copies the block, and a copied Python block is
the program the test suite runs: it compiles, and it equals the Markdown source
(recorded output is comments and strings, so a paste still runs)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from pytest_examples import find_examples

from tests.browser.conftest import DESKTOP, new_context
from tests.browser.site import NavPage, ServedSite, nav_pages
from tests.harness import DOCS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

COPY_BUTTON = "button.md-code__button[data-md-type=copy]"
# A code annotation marker, which Material shows as a bubble and leaves out of a copy.
ANNOTATION = re.compile(r"\s*# \(\d+\)!$", re.M)

# For each copy button: check it is on screen, click it, and read what reached
# the clipboard. A block in a hidden tab is reached by clicking its tab's label,
# as a reader would; linked tabs switch every set at once, so all blocks shown
# are copied before the next switch.
COPY_EVERY_BLOCK_JS = """
async (selector) => {
  const buttons = [...document.querySelectorAll(selector)];
  const copied = new Array(buttons.length);
  const shown = (el) => el.getBoundingClientRect().width > 0;
  const copy = async (button) => {
    await navigator.clipboard.writeText("");
    button.click();
    // The copy lands asynchronously: on a busy machine a read right after the
    // click comes first. Wait for it (a bound on a copy that never lands).
    let text = "";
    for (let attempt = 0; attempt < 200 && !text; attempt++) {
      text = await navigator.clipboard.readText();
      if (!text) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const highlight = button.closest(".highlight");
    const language = [...highlight.classList].find((name) => name.startsWith("language-"));
    return { language: language ? language.slice("language-".length) : "", text };
  };
  const showTabOf = (button) => {
    for (let block = button.closest(".tabbed-block"); block;
         block = block.parentElement.closest(".tabbed-block")) {
      const position = [...block.parentElement.children].indexOf(block);
      const set = block.closest(".tabbed-set");
      set.querySelectorAll(":scope > .tabbed-labels > label")[position].click();
    }
  };
  for (;;) {
    for (const [index, button] of buttons.entries()) {
      if (!copied[index] && shown(button)) copied[index] = await copy(button);
    }
    const next = buttons.findIndex((button, index) => !copied[index]);
    if (next === -1) return copied;
    showTabOf(buttons[next]);
    if (!shown(buttons[next])) {  // its tab is shown, yet it is not: report it
      copied[next] = { language: "", text: "", hidden: true };
    }
  }
}
"""


@pytest.fixture(scope="module")
def clipboard(browser: Browser, served_site: ServedSite) -> Iterator[BrowserContext]:
    context = new_context(browser, **DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served_site.origin)
    yield context
    context.close()


def python_sources(page: NavPage) -> list[str]:
    """The page's Python blocks as the test suite runs them, in page order."""
    return [
        ANNOTATION.sub("", example.source).rstrip()
        for example in find_examples(DOCS / page.source)
        if example.prefix.lstrip("{").split()[0].lstrip(".") in {"python", "py"}
    ]


@pytest.mark.parametrize("page", nav_pages(), ids=str)
def test_copy_buttons_copy_runnable_programs(
    page: NavPage, clipboard: BrowserContext, served_site: ServedSite
) -> None:
    tab = clipboard.new_page()
    tab.goto(served_site.url(page))
    code_blocks = tab.locator(".md-content pre > code").count()
    copied = tab.evaluate(COPY_EVERY_BLOCK_JS, COPY_BUTTON)
    assert len(copied) == code_blocks, (
        f"{page}: {code_blocks} code blocks but {len(copied)} copy buttons"
    )
    if copied:  # one real mouse click, the way a reader copies
        # On the last button a reader can see: the page's last block may sit
        # in a tab that is not the one shown, wherever the tests left the tabs.
        shown = tab.evaluate(
            "(selector) => [...document.querySelectorAll(selector)]"
            ".map((button, index) => [button.getBoundingClientRect().width > 0, index])"
            ".filter(([visible]) => visible).map(([, index]) => index)",
            COPY_BUTTON,
        )
        assert shown, f"{page}: no copy button is on screen"
        tab.evaluate("navigator.clipboard.writeText('')")
        tab.locator(COPY_BUTTON).nth(shown[-1]).click()
        # The copy completes asynchronously: a busy machine may read first.
        by_mouse = ""
        for _ in range(100):
            by_mouse = tab.evaluate("navigator.clipboard.readText()")
            if by_mouse:
                break
            tab.wait_for_timeout(100)
        assert by_mouse == copied[shown[-1]]["text"], f"{page}: a mouse click copied something else"
    tab.close()

    hidden = [number for number, block in enumerate(copied, 1) if block.get("hidden")]
    assert not hidden, f"{page}: the copy buttons of blocks {hidden} are not on screen"
    empty = [number for number, block in enumerate(copied, 1) if not block["text"].strip()]
    assert not empty, f"{page}: the copy buttons of blocks {empty} copied nothing"

    python = [block["text"] for block in copied if block["language"] in {"python", "py"}]
    for number, text in enumerate(python, 1):
        try:
            compile(text, f"{page} python block {number}", "exec")
        except SyntaxError as error:
            pytest.fail(f"{page}: python block {number} does not compile when pasted: {error}")

    sources = python_sources(page)
    assert len(python) == len(sources), (
        f"{page}: {len(python)} python blocks have a copy button, the Markdown has {len(sources)}"
    )
    for number, (text, source) in enumerate(zip(python, sources, strict=True), 1):
        if "--8<--" in source:
            continue  # a snippet include: the page shows the included file
        assert text == source, f"{page}: python block {number} copies something else"
