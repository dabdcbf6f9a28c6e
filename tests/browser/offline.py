"""What a built page would fetch from another origin, read from its HTML and CSS.

A pure check with no browser: every URL a browser would load on its own
(scripts, stylesheets, preconnects, icons, images, frames, CSS `url()` and
`@import`) must be on the page's own origin. Links a reader clicks (`<a href>`)
are not fetched and are allowed anywhere. Material's repository widget
(`data-md-component="source"`) counts as a fetch: its script asks the
repository host's API for stars and forks on every page view.

The browser tests catch the rest (a script that fetches at run time); this
check says which file and which tag brought the URL in.
"""

from __future__ import annotations

import html.parser
import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

# <link rel=...> values that make the browser fetch (or connect to) the href.
FETCHING_RELS = {
    "stylesheet",
    "preconnect",
    "dns-prefetch",
    "preload",
    "prefetch",
    "modulepreload",
    "icon",
    "shortcut",
    "apple-touch-icon",
    "manifest",
    "mask-icon",
}
# Attributes that load a resource, by tag.
FETCHING_ATTRS = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "iframe": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
}
NETWORK_SCHEMES = {"http", "https", "ws", "wss"}
DEFAULT_PORTS = {"http": 80, "https": 443}

_CSS_URL = re.compile(r"""url\(\s*(?P<quote>['"]?)(?P<url>[^'")]+)(?P=quote)\s*\)""")
_CSS_IMPORT = re.compile(r"""@import\s+(?P<quote>['"])(?P<url>[^'"]+)(?P=quote)""")


def is_foreign(url: str, base: str) -> bool:
    """True if `url`, resolved against `base`, is fetched from another origin."""
    target = urlsplit(urljoin(base, url.strip()))
    if target.scheme not in NETWORK_SCHEMES:
        return False  # data:, blob:, mailto:, javascript: ...
    return _origin(target.geturl()) != _origin(base)


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return scheme, parts.hostname, parts.port or DEFAULT_PORTS.get(scheme)


def css_urls(css: str) -> list[str]:
    """Every url() and @import target in a stylesheet."""
    found = [match["url"] for match in _CSS_URL.finditer(css)]
    found += [match["url"] for match in _CSS_IMPORT.finditer(css)]
    return found


def _srcset_urls(value: str) -> list[str]:
    return [part.strip().split()[0] for part in value.split(",") if part.strip()]


class _Fetches(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []  # (url, what brought it in)
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "link":
            rels = set(values.get("rel", "").lower().split())
            if rels & FETCHING_RELS and values.get("href"):
                self.found.append((values["href"], f'<link rel="{values["rel"]}">'))
        for name in FETCHING_ATTRS.get(tag, ()):
            if values.get(name):
                urls = _srcset_urls(values[name]) if name == "srcset" else [values[name]]
                self.found += [(url, f"<{tag} {name}>") for url in urls]
        if values.get("data-md-component") == "source" and values.get("href"):
            self.found.append((values["href"], "repository widget (repo_url)"))
        if values.get("style"):
            self.found += [(url, f"<{tag} style>") for url in css_urls(values["style"])]
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found += [(url, "<style>") for url in css_urls(data)]


def foreign_fetches_in_html(page_html: str, page_url: str) -> list[str]:
    """'URL (what)' for each resource the page would load from another origin."""
    parser = _Fetches()
    parser.feed(page_html)
    return [f"{url} ({what})" for url, what in parser.found if is_foreign(url, page_url)]


def foreign_fetches_in_css(css: str, css_url: str) -> list[str]:
    return [f"{url} (css)" for url in css_urls(css) if is_foreign(url, css_url)]


def foreign_fetches_in_site(site_dir: Path, site_url: str) -> list[str]:
    """'file: URL (what)' for every foreign fetch in the built site's HTML and CSS."""
    base = site_url if site_url.endswith("/") else site_url + "/"
    problems = []
    for path in sorted(site_dir.rglob("*")):
        if path.suffix not in {".html", ".css"}:
            continue
        relative = path.relative_to(site_dir).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        url = urljoin(base, relative)
        if path.suffix == ".html":
            found = foreign_fetches_in_html(text, url)
        else:
            found = foreign_fetches_in_css(text, url)
        problems += [f"{relative}: {item}" for item in found]
    return problems
