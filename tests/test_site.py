"""The site builds strictly, quietly, and every page in docs/ is in the navigation."""

from __future__ import annotations

import pytest

from tests.browser.site import load_config, nav_pages
from tests.harness import DOCS
from tests.pagecheck import section, table_rows
from tests.sitebuild import the_site_build


def test_build_is_strict_and_quiet(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The build the other site tests read (`built_site`), and all it printed."""
    build = the_site_build(tmp_path_factory)
    output = build.stdout + build.stderr
    assert build.returncode == 0, output
    assert "WARNING" not in output, output
    assert "end of life" not in output, "the Material notice should be silenced"


def test_every_page_is_in_the_nav() -> None:
    in_nav = {page.source for page in nav_pages()}
    hidden = set(load_config().get("not_in_nav", "").split())
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")} - hidden
    assert on_disk == in_nav


def test_home_results_match_the_pattern_pages() -> None:
    """Each figure of the home page's results is in the linked page's Performance table."""
    rows = table_rows(section(DOCS / "index.md", "## Results"))[1:]
    assert len(rows) >= 4
    for link, example, waterfall, fixed in rows:
        page = DOCS / link.split("](")[1].split("#")[0]
        cells = {cell for row in table_rows(section(page, "## Performance")) for cell in row}
        missing = [figure for figure in (waterfall, fixed) if figure not in cells]
        assert not missing, (
            f"docs/index.md Results, {example!r}: {missing} not in the Performance table "
            f"of {page.name}"
        )
