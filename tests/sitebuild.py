"""Build the site the way `make build` does, for tests.

Test builds also check every link in the rendered HTML (the htmlproofer
plugin), which `make build` leaves out to stay fast.

The tests that need the site as `mkdocs.yml` describes it share one build
per pytest run (`the_site_build`), whichever xdist worker they run on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import perrun
from tests.harness import ROOT


def build_site(
    site_dir: Path, config: Path = ROOT / "mkdocs.yml", check_rendered_links: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "CHECK_RENDERED_LINKS": "true" if check_rendered_links else "false",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(site_dir),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )


@dataclass(frozen=True)
class SiteBuild:
    """What one `build_site` of the project's mkdocs.yml made and printed."""

    site: Path
    returncode: int
    stdout: str
    stderr: str


def the_site_build(tmp_path_factory: pytest.TempPathFactory) -> SiteBuild:
    """The site built from mkdocs.yml, with its rendered links checked, once per pytest run."""

    def build(folder: Path) -> SiteBuild:
        result = build_site(folder / "site")
        return SiteBuild(folder / "site", result.returncode, result.stdout, result.stderr)

    return perrun.once(tmp_path_factory, "site-build", build)


def skip_while_links_are_broken() -> None:
    """Skip a test that needs the built site while a page links to nothing.

    `mkdocs build --strict` refuses such a site, and every test that needs
    it would fail with the same build log; the broken links are reported
    once, at their Markdown lines, by tests/test_docs.py::test_links_resolve.
    """
    from tests.pagecheck import all_link_problems

    problems = all_link_problems()
    if problems:
        pytest.skip(
            f"the site is not built while {len(problems)} link(s) go nowhere; "
            "test_links_resolve reports each at its line"
        )
