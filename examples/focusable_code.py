"""Make every code block reachable from the keyboard, so a reader can scroll it without a mouse.

A code block whose lines are wider than the screen scrolls sideways, and a
region that scrolls must take keyboard focus (WCAG 2.1.1). Material for
MkDocs gives the scrolling `<code>` `tabindex="0"` only on devices that can
hover, and removes it elsewhere, so on a phone with a keyboard those blocks
cannot be reached. This Python-Markdown extension writes `tabindex="0"` into
every block's `<pre>` at build time, and docs/assets/site.css makes that
`<pre>`, not the `<code>` in it, the element that scrolls. MkDocs and
Zensical load it from `markdown_extensions`:

    markdown_extensions:
      - examples.focusable_code
"""

from __future__ import annotations

import re

from markdown import Extension, Markdown
from markdown.postprocessors import Postprocessor

__all__ = ["FocusableCodeExtension", "makeExtension"]

# The <pre> of a highlighted block, <pre ...><span></span><code>, without a tabindex yet.
_PRE_OF_CODE = re.compile(r"<pre\b(?![^>]*\btabindex=)(?=[^>]*>(?:<span></span>)?<code)")


class _FocusablePostprocessor(Postprocessor):
    def run(self, text: str) -> str:
        return _PRE_OF_CODE.sub('<pre tabindex="0"', text)


class FocusableCodeExtension(Extension):
    """Give every code block's `<pre>` `tabindex="0"`."""

    def extendMarkdown(self, md: Markdown) -> None:
        # After the raw HTML of fenced blocks is put back (priority 30).
        md.postprocessors.register(_FocusablePostprocessor(md), "focusable_code", 5)


def makeExtension(**kwargs: object) -> FocusableCodeExtension:
    """The entry point Python-Markdown calls for `examples.focusable_code`."""
    return FocusableCodeExtension(**kwargs)
