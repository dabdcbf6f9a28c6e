"""Static checks of the Markdown pages: fences, links and pattern-page anatomy.

Each check returns a list of problems, each starting with `file:line:`, so a
test can print them all at once.
"""

from __future__ import annotations

import functools
import html.parser
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from pytest_examples import CodeExample, find_examples

from tests.harness import DOCS, relative

# The pattern pages; slugs mirror the original guide's file names.
PATTERN_PAGES = {
    "1.1": "prevent-waterfall-chains.md",
    "1.2": "parallelize-independent-operations.md",
    "2.1": "authenticate-actions.md",
    "2.4": "parallel-data-fetching.md",
    "2.5": "per-request-deduplication.md",
}

PYTHON_INFO = {"python", "py"}
# Languages a fence may be in without being run. Anything else is a typo or
# a block the example collector would silently skip.
OTHER_INFO = {
    "text",
    "console",
    "bash",
    "sh",
    "shell",
    "toml",
    "yaml",
    "yml",
    "json",
    "html",
    "jinja",
    "html+jinja",
    "markdown",
    "md",
    "ini",
    "make",
    "diff",
    "csv",
}

# Attributes the test harness reads (see tests/harness.py Settings).
HARNESS_ATTRIBUTES = {"test", "backend", "expect_warning", "stack", "python"}
_ATTRIBUTE = re.compile(r"([\w-]+)=")

_FENCE = re.compile(r"^(?P<indent> *)(?P<marks>`{3,}|~{3,})\s*(?P<info>[^\s`{]*)(?P<rest>.*)$")


@dataclass(frozen=True)
class Fence:
    line: int  # 1-based line of the opening fence
    indent: int
    marks: str
    info: str
    rest: str


def fences(path: Path) -> list[Fence]:
    """Every fenced block's opening line, in order."""
    found: list[Fence] = []
    open_fence: Fence | None = None
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = _FENCE.match(text)
        if not match:
            continue
        marks = match["marks"]
        if open_fence is None:
            info, rest = match["info"].lower(), match["rest"].strip()
            if not info and rest.startswith("{"):
                # The attribute-list form: ```{.python title="..." test="skip: ..."}
                classes = [word for word in rest.strip("{}").split() if word.startswith(".")]
                info = classes[0].lower() if classes else ""
            open_fence = Fence(number, len(match["indent"]), marks, info, rest)
            found.append(open_fence)
        elif (
            marks[0] == open_fence.marks[0]
            and len(marks) >= len(open_fence.marks)
            and not match["info"]
        ):
            open_fence = None
    return found


def fence_problems(path: Path) -> list[str]:
    """Fences the example collector would not see, or would see wrongly."""
    name = relative(path)
    problems = []
    collected = {example.start_line for example in find_examples(path)}
    for fence in fences(path):
        where = f"{name}:{fence.line}"
        lang = fence.info.lstrip(".")
        if lang in OTHER_INFO:
            continue  # not Python: any fence style is fine (e.g. ```` around a template)
        if fence.marks[0] == "~":
            problems.append(f"{where}: use ``` fences; the example collector skips ~~~ fences")
        elif len(fence.marks) > 3:
            problems.append(
                f"{where}: use exactly three backticks; the example collector skips "
                f"{len(fence.marks)}-backtick fences"
            )
        elif lang == "pycon":
            problems.append(
                f"{where}: pycon blocks are not run; write a python program that prints"
            )
        elif lang in PYTHON_INFO:
            steering = sorted(set(_ATTRIBUTE.findall(fence.rest)) & HARNESS_ATTRIBUTES)
            if steering and not fence.rest.startswith("{"):
                problems.append(
                    f"{where}: a fence with {steering} must use the attribute-list form "
                    '```{.python title="..." ...}: in the plain form the site drops '
                    "every attribute of the fence, its title included"
                )
            if fence.line not in collected:
                problems.append(
                    f"{where}: this python fence is not collected "
                    "(is its closing fence indented like its opening one?)"
                )
        else:
            problems.append(
                f"{where}: unknown fence language {fence.info!r}; use python for code that runs, "
                f"or one of {sorted(OTHER_INFO)}"
            )
    return problems


# --- Links -------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_INLINE_CODE = re.compile(r"`[^`]*`")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of lines outside fenced blocks, inline code removed."""
    inside: set[int] = set()
    open_fence: Fence | None = None
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = _FENCE.match(text)
        if match and open_fence is None:
            open_fence = Fence(number, 0, match["marks"], "", "")
            inside.add(number)
        elif open_fence is not None:
            inside.add(number)
            if match and match["marks"][0] == open_fence.marks[0] and not match["info"]:
                open_fence = None
    return [
        (number, _INLINE_CODE.sub("", text))
        for number, text in enumerate(path.read_text().splitlines(), start=1)
        if number not in inside
    ]


class _Ids(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key == "id" and value:
                self.ids.add(value)


def built_page(site: Path, page: Path, docs: Path = DOCS) -> Path:
    """Where mkdocs writes a page (directory URLs)."""
    rel = page.relative_to(docs).with_suffix("")
    if rel.name == "index":
        return site / rel.parent / "index.html"
    return site / rel / "index.html"


def anchors(site: Path, page: Path, docs: Path = DOCS) -> set[str]:
    parser = _Ids()
    parser.feed(built_page(site, page, docs).read_text())
    return parser.ids


def link_problems(path: Path, site: Path, docs: Path = DOCS) -> list[str]:
    """Links to pages or #anchors that do not exist, with file and line."""
    name = relative(path)
    problems = []
    for number, text in prose_lines(path):
        for match in _LINK.finditer(text):
            target = match["target"]
            if re.match(r"^[a-z]+:", target):
                continue  # another scheme: http, https, mailto
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path.resolve()
            where = f"{name}:{number}"
            if not linked.exists():
                problems.append(f"{where}: link to {target!r}: no such file {relative(linked)}")
                continue
            if anchor and linked.suffix == ".md" and anchor not in anchors(site, linked, docs):
                problems.append(f"{where}: link to {target!r}: {relative(linked)} has no #{anchor}")
    return problems


# --- Pattern pages -----------------------------------------------------------------

_TITLE = re.compile(r"^# (?P<number>\d\.\d+) \S")
_TAB = re.compile(r'^=== "(?P<name>[^"]+)"')


def pattern_problems(path: Path) -> list[str]:
    """What a pattern page lacks: numbered title, tab pair, performance table, links."""
    name = relative(path)
    lines = path.read_text().splitlines()
    problems = []
    first = _first_content_line(lines)
    if first is None or not _TITLE.match(lines[first]):
        problems.append(
            f"{name}:{(first or 0) + 1}: the page must start with its numbered title, like "
            "`# 1.1 Prevent waterfall chains`"
        )
    tabs = [
        (number, m["name"]) for number, line in enumerate(lines, start=1) if (m := _TAB.match(line))
    ]
    pair = any(
        (first, second) == ("asyncio", "AnyIO")
        for (_, first), (_, second) in itertools.pairwise(tabs)
    )
    if not pair:
        problems.append(
            f'{name}:1: no `=== "asyncio"` tab followed by an `=== "AnyIO"` tab '
            "for the correct version"
        )
    if not _has_performance_table(lines):
        problems.append(f"{name}:1: no `## Performance` section with a table of measured numbers")
    linked = {
        m["target"].partition("#")[0].rsplit("/", 1)[-1]
        for _, text in prose_lines(path)
        for m in _LINK.finditer(text)
    }
    missing = [slug for slug in PATTERN_PAGES.values() if slug != path.name and slug not in linked]
    if missing:
        problems.append(f"{name}:1: no link to the other pattern page(s) {missing}")
    return problems


def _first_content_line(lines: list[str]) -> int | None:
    """Index of the first line after any front matter and blank lines."""
    index = 0
    if lines and lines[0] == "---":
        index = lines.index("---", 1) + 1 if "---" in lines[1:] else len(lines)
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index if index < len(lines) else None


def _has_performance_table(lines: list[str]) -> bool:
    in_section = False
    for line in lines:
        if line.startswith("## "):
            in_section = line.strip() == "## Performance"
        elif in_section and line.lstrip().startswith("|"):
            return True
    return False


def table_value(path: Path, label: str) -> str:
    """The second cell of the table row whose first cell is `label`."""
    match = re.search(rf"^\| {re.escape(label)} \| ([^|]+) \|$", path.read_text(), re.M)
    assert match, f"{relative(path)} has no table row {label!r}"
    return match[1].strip()


# --- Reading a page's blocks and tables, for tests that check its figures ----------


@functools.cache
def _examples(path: Path) -> list[CodeExample]:
    return list(find_examples(path))


def block_titled(path: Path, title: str) -> CodeExample:
    """The one block of the page with this `title="..."`.

    pytest-examples lower-cases fence attributes, so titles compare in lower case.
    """
    found = [ex for ex in _examples(path) if ex.prefix_settings().get("title") == title.lower()]
    assert len(found) == 1, f'{relative(path)}: {len(found)} blocks with title="{title}", not one'
    return found[0]


def section(path: Path, heading: str) -> list[str]:
    """The lines under a `## heading`, up to the next `## ` heading."""
    lines = path.read_text().splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def table_rows(lines: list[str]) -> list[list[str]]:
    """Cells of the Markdown table rows among `lines`, the header included, the rule not."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in lines
        if line.lstrip().startswith("|")
    ]
    return [row for row in rows if not all(set(cell) <= set("-: ") for cell in row)]
