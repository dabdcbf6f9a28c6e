"""Every code block's <pre> takes keyboard focus, once, and nothing else does."""

from __future__ import annotations

import markdown


def test_each_code_block_pre_gets_one_tabindex() -> None:
    page = "Text with `inline code`.\n\n```python\nprint(1)\n```\n\n```text\nplain\n```\n"
    html = markdown.markdown(
        page, extensions=["pymdownx.highlight", "pymdownx.superfences", "examples.focusable_code"]
    )
    assert html.count('<pre tabindex="0">') == 2, html
    assert html.count("tabindex") == 2, "inline code and other elements stay unfocusable"
