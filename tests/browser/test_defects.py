"""The checks catch what they are for: a copy of the docs with a defect injected
is built into a temporary directory, and the check must fail on it.

- An asset no longer self-hosted (web fonts from Google, a script from a CDN,
  the repository widget's API call): the HTML check and the browser both see
  the other origin.
- A link to a missing anchor, in Markdown or in raw HTML: the strict build fails.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import DESKTOP, new_context, watch
from tests.browser.offline import foreign_fetches_in_site
from tests.browser.site import build, copy_project, load_config, serve, site_path
from tests.sitebuild import build_site

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CDN_SCRIPT = "https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.min.js"
REPOSITORY = "https://github.com/waterfall-free/async-python"


def with_defect(directory: Path, edit: Callable[[Path], None]) -> Path:
    """A copy of docs/ and mkdocs.yml in `directory`, changed by `edit`; the copied config."""
    config = copy_project(directory)
    edit(directory)
    return config


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer contains {old!r}; update this test"
    path.write_text(text.replace(old, new, 1))


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + "\n" + text + "\n")


def not_self_hosted(directory: Path) -> None:
    """Web fonts back on, a CDN script on the home page, and a repository widget."""
    replace(directory / "mkdocs.yml", "font: false", "font:\n    text: Roboto")
    replace(directory / "mkdocs.yml", "site_url:", f"repo_url: {REPOSITORY}\nsite_url:")
    append(directory / "docs" / "index.md", f'<script src="{CDN_SCRIPT}"></script>')


@pytest.fixture(scope="module")
def site_not_self_hosted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The defect's copy, built without the rendered-link check (two thirds of a build).

    The tests read it for other origins, which that check skips; the copy's
    own links are the site's, checked by the site's build (tests/test_site.py).
    """
    directory = tmp_path_factory.mktemp("not-self-hosted")
    build(
        directory / "site",
        with_defect(directory, not_self_hosted),
        check_rendered_links=False,
    )
    return directory / "site"


def test_html_check_catches_assets_from_other_origins(site_not_self_hosted: Path) -> None:
    found = "\n".join(foreign_fetches_in_site(site_not_self_hosted, load_config()["site_url"]))
    assert "fonts.googleapis.com" in found
    assert "fonts.gstatic.com" in found
    assert CDN_SCRIPT in found
    assert f"{REPOSITORY} (repository widget (repo_url))" in found


@pytest.fixture
def served_not_self_hosted(site_not_self_hosted: Path) -> Iterator[str]:
    with serve(site_not_self_hosted, site_path()) as origin:
        yield origin


def test_browser_check_catches_requests_to_other_origins(
    browser: Browser, served_not_self_hosted: str
) -> None:
    context = new_context(browser, **DESKTOP)
    page = context.new_page()
    seen = watch(page, served_not_self_hosted)
    page.goto(served_not_self_hosted + site_path(), wait_until="networkidle")
    context.close()
    found = "\n".join(seen.foreign_requests)
    assert "fonts.googleapis.com" in found
    assert CDN_SCRIPT in found
    assert "api.github.com" in found  # Material's repository widget asks for stars


def build_fails(directory: Path, edit: Callable[[Path], None]) -> subprocess.CompletedProcess[str]:
    return build_site(directory / "site", with_defect(directory, edit))


@pytest.mark.parametrize(
    ("link", "anchor"),
    [
        ("[broken](testing.md#no-such-section)", "no-such-section"),
        ('<a href="#no-such-heading">broken</a>', "no-such-heading"),
    ],
    ids=["markdown-link", "raw-html-link"],
)
def test_strict_build_fails_on_link_to_missing_anchor(
    tmp_path: Path, link: str, anchor: str
) -> None:
    result = build_fails(tmp_path, lambda d: append(d / "docs" / "index.md", link))
    assert result.returncode != 0
    assert anchor in result.stderr
