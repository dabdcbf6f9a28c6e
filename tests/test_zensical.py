"""The same mkdocs.yml builds with Zensical, Material's successor.

Runs when a Zensical environment exists at .venv-zensical (`make .venv-zensical`,
from requirements/zensical.txt); skips otherwise, unless REQUIRE_ZENSICAL=1.
Zensical has no --site-dir option and wants docs_dir inside the project, so
each build uses a copy of docs/, overrides/ and mkdocs.yml in a temporary
directory, run from the repository so snippet paths resolve as in MkDocs.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import perrun
from tests.browser.site import copy_project, nav_pages
from tests.harness import ROOT

ZENSICAL = ROOT / ".venv-zensical" / "bin" / "zensical"


@pytest.fixture(scope="session", autouse=True)
def zensical_installed() -> None:
    if ZENSICAL.exists():
        return
    reason = f"no Zensical environment at {ZENSICAL.parent.parent.name} (make .venv-zensical)"
    if os.environ.get("REQUIRE_ZENSICAL") == "1":
        pytest.fail(f"REQUIRE_ZENSICAL=1, but {reason}", pytrace=False)
    pytest.skip(reason)


def zensical_build(directory: Path, defect: str = "") -> subprocess.CompletedProcess[str]:
    """Build a copy of the project in `directory` into directory/site, strictly."""
    config = copy_project(directory)
    config.write_text(config.read_text() + f"\nsite_dir: {directory / 'site'}\n")
    if defect:
        index = directory / "docs" / "index.md"
        index.write_text(index.read_text() + "\n" + defect + "\n")
    return subprocess.run(
        [str(ZENSICAL), "build", "--strict", "--config-file", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


@pytest.fixture(scope="session")
def zensical_site(zensical_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built with Zensical once per pytest run, whichever worker asks first."""
    result, site = perrun.once(
        tmp_path_factory, "zensical", lambda folder: (zensical_build(folder), folder / "site")
    )
    output = result.stdout + result.stderr
    if "No module named 'examples'" in output:
        pytest.fail(
            f"{ZENSICAL.parent.parent.name} cannot import the chart extension of mkdocs.yml "
            "(examples.waterfall_chart): rebuild it with `rm -r .venv-zensical && make zensical`",
            pytrace=False,
        )
    assert result.returncode == 0, f"zensical build --strict failed:\n{output}"
    return site


def test_every_nav_page_is_built(zensical_site: Path) -> None:
    missing = [
        str(page) for page in nav_pages() if not (zensical_site / page.url / "index.html").is_file()
    ]
    assert not missing, "Zensical did not build: " + ", ".join(missing)
    assert (zensical_site / "404.html").is_file()


def test_pages_keep_their_descriptions(zensical_site: Path) -> None:
    index = (zensical_site / "index.html").read_text()
    assert '<meta name="description"' in index
    assert '<meta property="og:description"' in index


def test_timelines_are_drawn_as_charts(zensical_site: Path) -> None:
    """Zensical runs the chart extension from markdown_extensions (it ignores hooks)."""
    page = zensical_site / "patterns" / "prevent-waterfall-chains" / "index.html"
    assert page.read_text().count('<figure class="waterfall"') >= 5
    assert (zensical_site / "assets" / "waterfall.css").is_file()


def test_missing_anchor_still_fails_the_build(tmp_path: Path) -> None:
    """Zensical ignores the htmlproofer plugin but checks anchors itself."""
    result = zensical_build(tmp_path, defect='<a href="#no-such-heading">broken</a>')
    assert result.returncode != 0
    assert "anchor does not exist" in result.stdout + result.stderr
