"""The site as a browser sees it: its pages, a build for a local address, a server.

The site is served the way GitHub Pages serves it: under the path of
`site_url` (so absolute links in the 404 page resolve), with the 404 page
answering any missing path. The build used by the browser tests sets
`site_url` to the local server's address, as `mkdocs serve` does, because
Material's instant navigation only takes over links on the `site_url` origin.
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

from mkdocs.utils.yaml import yaml_load

from tests.harness import ROOT
from tests.sitebuild import build_site

CONFIG = ROOT / "mkdocs.yml"


def load_config(config: Path = CONFIG) -> dict:
    with config.open() as file:
        return yaml_load(file)


@dataclass(frozen=True)
class NavPage:
    source: str  # path under docs/, e.g. "patterns/prevent-waterfall-chains.md"
    title: str

    @property
    def url(self) -> str:
        """The page's path relative to the site root, e.g. "patterns/x/"."""
        stem = self.source.removesuffix(".md")
        if stem == "index":
            return ""
        return stem.removesuffix("/index") + "/"

    @property
    def slug(self) -> str:
        """A file-name-safe name for the page."""
        return self.url.strip("/").replace("/", "-") or "index"

    def __str__(self) -> str:
        return self.source


def nav_pages(config: Path = CONFIG) -> list[NavPage]:
    """Every Markdown page listed in the nav, in nav order."""
    pages: list[NavPage] = []

    def walk(items: list) -> None:
        for item in items:
            if isinstance(item, str):
                title, target = item, item
            else:
                ((title, target),) = item.items()
            if isinstance(target, list):
                walk(target)
            elif target.endswith(".md"):
                pages.append(NavPage(target, title))

    walk(load_config(config)["nav"])
    return pages


def site_path(config: Path = CONFIG) -> str:
    """The path part of site_url, e.g. "/async-python/" (or "/")."""
    site_url = load_config(config).get("site_url") or "/"
    path = urlsplit(site_url).path
    return path if path.endswith("/") else path + "/"


def build(
    site_dir: Path,
    config: Path = CONFIG,
    site_url: str | None = None,
    check_rendered_links: bool = True,
) -> None:
    """`mkdocs build --strict`, with site_url set through SITE_URL if given."""
    env = {"SITE_URL": site_url} if site_url else {}
    with mock.patch.dict(os.environ, env):
        result = build_site(site_dir, config, check_rendered_links)
    if result.returncode != 0:
        raise AssertionError(f"mkdocs build --strict failed:\n{result.stderr}")


def copy_project(directory: Path) -> Path:
    """docs/, mkdocs.yml and overrides/ copied into `directory`, for injecting defects.

    Returns the copied mkdocs.yml. Snippet paths still resolve against the
    repository, because builds run there.
    """
    shutil.copytree(ROOT / "docs", directory / "docs")
    if (ROOT / "overrides").exists():
        shutil.copytree(ROOT / "overrides", directory / "overrides")
    shutil.copy(CONFIG, directory / "mkdocs.yml")
    return directory / "mkdocs.yml"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves `directory` under `mount`; anything missing gets 404.html, status 404."""

    mount = "/"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = urlsplit(self.path).path
        if path == self.mount.rstrip("/"):
            self.send_response(301)
            self.send_header("Location", self.mount)
            self.end_headers()
            return None
        if not path.startswith(self.mount):
            return self._not_found()
        target = Path(self.translate_path(self.path))
        if not (target.is_file() or (target / "index.html").is_file()):
            return self._not_found()
        return super().send_head()

    def translate_path(self, path: str) -> str:
        return super().translate_path("/" + path[len(self.mount) :])

    def _not_found(self) -> io.BytesIO:
        page = Path(self.directory) / "404.html"
        body = page.read_bytes() if page.is_file() else b"Not found"
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A browser that drops a connection mid-response is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass(frozen=True)
class ServedSite:
    directory: Path
    origin: str  # "http://127.0.0.1:PORT"
    base: str  # origin + mount path, ending in "/"
    pages: tuple[NavPage, ...]

    def url(self, page: NavPage) -> str:
        return self.base + page.url


@contextmanager
def serve(directory: Path, mount: str) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a free port) under `mount`; yields the origin.

    The directory may be filled after the server starts and before the first
    request, so a build can know the address it will be served at.
    """
    handler_class = type("Handler", (_Handler,), {"mount": mount})
    handler = functools.partial(handler_class, directory=str(directory))
    server = _Server(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- Reading built pages -------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")
_TAB_LABELS = re.compile(r'<div class="tabbed-labels[^"]*">(?P<labels>.*?)</div>', re.S)
_LABEL = re.compile(r"<label[^>]*>(?P<text>.*?)</label>", re.S)
_ARTICLE = re.compile(r'<article class="md-content__inner[^"]*">(?P<body>.*?)</article>', re.S)


def built_html(site_dir: Path, page: NavPage) -> str:
    return (site_dir / page.url / "index.html").read_text()


def tab_label_sets(page_html: str) -> list[list[str]]:
    """The labels of each content-tab set on a page, e.g. [["asyncio", "AnyIO"]]."""
    return [
        [_TAG.sub("", label["text"]).strip() for label in _LABEL.finditer(labels["labels"])]
        for labels in _TAB_LABELS.finditer(page_html)
    ]


def word_count(page_html: str) -> int:
    """Words in the page's article (not the navigation)."""
    match = _ARTICLE.search(page_html)
    return len(_TAG.sub(" ", match["body"] if match else "").split())
