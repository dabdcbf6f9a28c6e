"""Every page read by axe-core and measured in Chromium: WCAG 2.1 A/AA, code widths, charts.

axe-core comes from npm at the version tests/browser/package.json pins
(`make axe`), and is injected into each page by the test from the local
install: the site never loads it. Without it these tests skip, unless
REQUIRE_BROWSER=1 (as in CI), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import SCREENSHOTS, WIDTHS, new_context
from tests.browser.site import NavPage, ServedSite, nav_pages

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

BROWSER_TESTS = Path(__file__).parent
AXE = BROWSER_TESTS / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SCHEMES = {"light": "default", "dark": "slate"}
PAGES = nav_pages()
# axe-core reads every element of every page four times: minutes on a busy machine.
pytestmark = pytest.mark.timeout(1800)


def pinned_axe_version() -> str:
    package = json.loads((BROWSER_TESTS / "package.json").read_text())
    return package["dependencies"]["axe-core"]


@pytest.fixture(scope="module")
def axe_script() -> Path:
    if not AXE.is_file():
        reason = f"axe-core is not installed at {AXE.relative_to(BROWSER_TESTS.parent.parent)} "
        reason += "(make axe)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1, but {reason}", pytrace=False)
        pytest.skip(reason)
    installed = json.loads((AXE.parent / "package.json").read_text())["version"]
    assert installed == pinned_axe_version(), (
        f"axe-core {installed} is installed, tests/browser/package.json pins "
        f"{pinned_axe_version()}: run `make axe`"
    )
    return AXE


@dataclass
class Audit:
    violations: list[str]
    wide_blocks: list[str]
    covered_text: list[str]
    chars_per_line: int | None
    charts: int
    unlabelled_graphics: list[str]


# Code blocks whose text is wider than the block (they scroll sideways), and
# how many characters of the code font fit one line of a block.
CODE_WIDTH_JS = """
() => {
  const blocks = [...document.querySelectorAll(".md-typeset pre > code")]
    .filter((code) => code.getBoundingClientRect().width > 0);
  // The element that scrolls: the <pre> (docs/assets/site.css), or the <code> in it.
  const scroller = (code) =>
    ["auto", "scroll"].includes(getComputedStyle(code.parentElement).overflowX)
      ? code.parentElement : code;
  const wide = blocks
    .filter((code) => scroller(code).scrollWidth > scroller(code).clientWidth + 1)
    .map((code) => {
      const block = code.closest(".highlight");
      const title = block && block.querySelector(".filename");
      const first = code.innerText.split("\\n").find((line) => line.trim()) || "";
      const box = scroller(code);
      return `${title ? title.innerText : first.trim().slice(0, 40)}: ` +
        `${box.scrollWidth} px of text in a ${box.clientWidth} px block`;
    });
  let perLine = null;
  if (blocks.length) {
    const code = blocks[0];
    const probe = document.createElement("span");
    probe.textContent = "0".repeat(100);
    probe.style.whiteSpace = "pre";
    code.appendChild(probe);
    const charWidth = probe.getBoundingClientRect().width / 100;
    probe.remove();
    const style = getComputedStyle(code);
    const inner = scroller(code).clientWidth - parseFloat(style.paddingLeft) -
      parseFloat(style.paddingRight);
    perLine = Math.floor(inner / charWidth);
  }
  return { wide, perLine };
}
"""

# Text in a code block that lies under its copy button.
COVERED_TEXT_JS = """
() => {
  const covered = [];
  for (const button of document.querySelectorAll("button.md-code__button")) {
    const box = button.getBoundingClientRect();
    if (!box.width) continue;
    const block = button.closest(".highlight") || button.parentElement;
    const code = block.querySelector("pre > code");
    if (!code) continue;
    const overlaps = (r) =>
      r.right > box.left && r.left < box.right && r.bottom > box.top && r.top < box.bottom;
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent;
      const whole = document.createRange();
      whole.selectNodeContents(node);
      if (![...whole.getClientRects()].some(overlaps)) continue;
      for (let i = 0; i < text.length; i++) {
        if (!text[i].trim()) continue;
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        if (overlaps(range.getBoundingClientRect())) {
          const line = text.slice(0, 60).trim();
          covered.push(`the copy button covers "${text[i]}" in: ${line}`);
          break;
        }
      }
      if (covered.length > 20) break;
    }
  }
  return covered;
}
"""

# Images and inline SVGs without a text alternative, and charts without one.
GRAPHICS_JS = """
() => {
  const missing = [];
  for (const img of document.querySelectorAll(".md-content img")) {
    if (!img.getAttribute("alt")) missing.push(`img ${img.getAttribute("src")} has no alt text`);
  }
  for (const svg of document.querySelectorAll(".md-content svg")) {
    if (svg.closest("button, a, label, .md-icon, .twemoji")) continue;
    const hidden = svg.getAttribute("aria-hidden") === "true";
    const named = svg.getAttribute("role") === "img" &&
      (svg.querySelector("title") || svg.getAttribute("aria-label"));
    if (!hidden && !named) missing.push("an inline svg has no role=img and <title>");
  }
  const charts = [...document.querySelectorAll("figure.waterfall")];
  for (const chart of charts) {
    const caption = chart.querySelector("figcaption");
    if (!caption || !caption.innerText.trim()) missing.push("a chart has no caption");
  }
  return { missing, charts: charts.length };
}
"""


def audit(page: Page, axe: Path) -> Audit:
    page.add_script_tag(path=str(axe))
    result = page.evaluate(
        "async (tags) => await axe.run(document, { runOnly: { type: 'tag', values: tags } })",
        AXE_TAGS,
    )
    violations = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} - "
        f"{len(violation['nodes'])} element(s), e.g. {violation['nodes'][0]['target']}"
        for violation in result["violations"]
    ]
    graphics = page.evaluate(GRAPHICS_JS)
    # Blocks in a tab are measured with their tab shown: each tab name in turn.
    wide: list[str] = []
    covered: list[str] = []
    per_line = None
    for tab in [None, *page.evaluate(TAB_NAMES_JS)]:
        if tab is not None:
            page.evaluate(SHOW_TAB_JS, tab)
        widths = page.evaluate(CODE_WIDTH_JS)
        per_line = per_line or widths["perLine"]
        wide += [block for block in widths["wide"] if block not in wide]
        covered += [text for text in page.evaluate(COVERED_TEXT_JS) if text not in covered]
    return Audit(violations, wide, covered, per_line, graphics["charts"], graphics["missing"])


TAB_NAMES_JS = """
() => [...new Set([...document.querySelectorAll(".tabbed-labels > label")]
  .map((label) => label.innerText.trim()))]
"""

SHOW_TAB_JS = """
(name) => {
  for (const label of document.querySelectorAll(".tabbed-labels > label")) {
    if (label.innerText.trim() === name) label.click();
  }
}
"""


@pytest.fixture(scope="module")
def audits(
    browser: Browser, served_site: ServedSite, axe_script: Path
) -> Iterator[dict[tuple[str, str, str], Audit]]:
    """Every nav page audited at each width, in the light and the dark scheme."""
    found: dict[tuple[str, str, str], Audit] = {}
    for width, options in WIDTHS.items():
        for scheme, material_name in SCHEMES.items():
            context = new_context(browser, color_scheme=scheme, **options)
            page = context.new_page()
            for nav_page in served_site.pages:
                page.goto(served_site.url(nav_page), wait_until="load")
                shown = page.locator("body").get_attribute("data-md-color-scheme")
                assert shown == material_name, f"{nav_page}: {scheme} mode shows {shown}"
                found[nav_page.source, width, scheme] = audit(page, axe_script)
            context.close()
    yield found


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_no_wcag_violations(page: NavPage, audits: dict[tuple[str, str, str], Audit]) -> None:
    problems = [
        f"docs/{page} ({width}, {scheme}): {violation}"
        for width in WIDTHS
        for scheme in SCHEMES
        for violation in audits[page.source, width, scheme].violations
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_graphics_have_text_alternatives(
    page: NavPage, audits: dict[tuple[str, str, str], Audit]
) -> None:
    missing = audits[page.source, "desktop", "light"].unlabelled_graphics
    assert not missing, f"docs/{page}: " + "; ".join(missing)


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_code_fits_the_column_at_desktop_width(
    page: NavPage, audits: dict[tuple[str, str, str], Audit]
) -> None:
    result = audits[page.source, "desktop", "light"]
    assert not result.wide_blocks, (
        f"docs/{page}: at 1280 px a line fits {result.chars_per_line} characters; these blocks "
        "scroll sideways (shorten their lines):\n" + "\n".join(result.wide_blocks)
    )


@pytest.mark.parametrize("page", PAGES, ids=str)
def test_copy_button_covers_no_text(
    page: NavPage, audits: dict[tuple[str, str, str], Audit]
) -> None:
    problems = [
        f"docs/{page} ({width}): {problem}"
        for width in WIDTHS
        for problem in audits[page.source, width, "light"].covered_text
    ]
    assert not problems, "\n".join(problems)


def test_report_characters_per_code_line(
    audits: dict[tuple[str, str, str], Audit],
    record_testsuite_property: Callable[[str, object], None],
) -> None:
    """How many characters of code fit one line at each width (printed with -s).

    In a JUnit report the figure is a property of the suite: a test's own
    properties (`record_property`) warn under pytest's default xunit2 format.
    pytest records suite properties only without xdist, as `make test` runs
    the browser tests; under xdist (`make check-page`) only the print remains.
    """
    for width in WIDTHS:
        counts = {a.chars_per_line for (_, w, _), a in audits.items() if w == width}
        counts.discard(None)
        assert len(counts) == 1, f"{width}: code lines fit {sorted(counts)} characters"
        (count,) = counts
        record_testsuite_property(f"chars_per_code_line_{width}", count)
        print(f"{width}: {count} characters fit one line of a code block")


@pytest.mark.page("patterns/prevent-waterfall-chains.md")
def test_chart_screenshots_at_both_widths(browser: Browser, served_site: ServedSite) -> None:
    """A chart with a failed call, kept as an artifact at desktop and phone width."""
    (page,) = [p for p in served_site.pages if p.source == "patterns/prevent-waterfall-chains.md"]
    SCREENSHOTS.mkdir(exist_ok=True)
    for width, options in WIDTHS.items():
        context = new_context(browser, **options)
        tab = context.new_page()
        tab.goto(served_site.url(page), wait_until="load")
        chart = tab.locator("figure.waterfall:has(.waterfall__row--failed)").first
        chart.scroll_into_view_if_needed()
        box = chart.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= options["viewport"]["width"], (
            f"docs/{page}: the chart does not fit a {width} screen: {box}"
        )
        path = SCREENSHOTS / f"chart-{width}.png"
        chart.screenshot(path=path)
        assert path.stat().st_size > 1000
        context.close()
