"""Static checks of the Markdown pages: fences, links and pattern-page anatomy.

Each check returns a list of problems, each starting with `file:line:`, so a
test can print them all at once.
"""

from __future__ import annotations

import functools
import html.parser
import itertools
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from markdown.extensions.toc import slugify as toc_slugify
from pytest_examples import CodeExample, find_examples

from tests.harness import DOCS, relative, string_statements

# The pattern pages, by number. Pages that translate the guide keep its
# section numbers (1.1, 2.4) and their slugs mirror its file names; pages that
# go beyond it are numbered P1, P2, ..., which cannot collide with the guide's.
PATTERN_PAGES = {
    "1.1": "prevent-waterfall-chains.md",
    "1.2": "parallelize-independent-operations.md",
    "1.3": "strategic-suspense-boundaries.md",
    "2.1": "authenticate-actions.md",
    "2.4": "parallel-data-fetching.md",
    "2.5": "per-request-deduplication.md",
    "2.6": "use-after-non-blocking.md",
    "P1": "results-as-they-arrive.md",
    "P2": "cross-request-caching.md",
    "P3": "race-and-hedge.md",
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
    """The ids in a page's built HTML."""
    parser = _Ids()
    parser.feed(built_page(site, page, docs).read_text())
    return parser.ids


_HEADING = re.compile(r"^ *(#{1,6}) +(?P<text>.+?) *#* *$")
_HEADING_ID = re.compile(r"\s*\{[^}]*#(?P<id>[\w-]+)[^}]*\}\s*$")
_RAW_ID = re.compile(r"""\bid=["'](?P<id>[^"']+)["']""")
_MARKUP = re.compile(r"`([^`]*)`|\[([^\]]*)\]\([^)]*\)|[*_]{1,2}([^*_]+)[*_]{1,2}")


def markdown_anchors(page: Path) -> set[str]:
    """The anchors a page's headings and raw HTML ids give it, read from its Markdown.

    Headings get the id the toc extension gives them: the heading's text
    without markup, slugified, with `_1`, `_2`, ... for repeats; an
    attribute list (`{#id}`) sets its own.
    """
    found: set[str] = set()
    seen: Counter[str] = Counter()
    raw = page.read_text().splitlines()
    for number, prose in prose_lines(page):
        for match in _RAW_ID.finditer(prose):
            found.add(match["id"])
        text = raw[number - 1]  # a heading's inline code is part of its id
        heading = _HEADING.match(text)
        if not heading:
            continue
        title = heading["text"]
        explicit = _HEADING_ID.search(title)
        if explicit:
            found.add(explicit["id"])
            continue
        plain = _MARKUP.sub(lambda m: next(g for g in m.groups() if g is not None), title)
        slug = toc_slugify(html.unescape(plain), "-")
        anchor = slug if not seen[slug] else f"{slug}_{seen[slug]}"
        seen[slug] += 1
        found.add(anchor)
    return found


def link_problems(path: Path, docs: Path = DOCS) -> list[str]:
    """Links to pages or #anchors that do not exist, with file and line.

    Read from the Markdown alone, so a broken link is reported at its line
    before anything is built.
    """
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
                problems.append(
                    f"{where}: link to {target!r}: no such file {relative(linked)}; "
                    "fix the path (it is relative to this page)"
                )
                continue
            if anchor and linked.suffix == ".md" and anchor not in markdown_anchors(linked):
                problems.append(
                    f"{where}: link to {target!r}: {relative(linked)} has no #{anchor}; "
                    "link to a heading that exists (its id is its text, lower-case, "
                    "with hyphens)"
                )
    return problems


def all_link_problems(docs: Path = DOCS) -> list[str]:
    return [problem for page in sorted(docs.rglob("*.md")) for problem in link_problems(page)]


# --- Pattern pages -----------------------------------------------------------------

_TITLE = re.compile(r"^# (?P<number>\d\.\d+|P\d+) \S")
RELATED_HEADING = "## Related patterns"
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
    sets = tab_sets(lines)
    if not any(_pairs_both_worlds(tabs) for tabs in sets) and not any(
        tab == "AnyIO" or tab.startswith("asyncio") for tabs in sets for _, tab in tabs
    ):
        problems.append(
            f'{name}:1: no `=== "asyncio"` tab followed by an `=== "AnyIO"` tab '
            "for the correct version"
        )
    for tabs in sets:
        if _pairs_both_worlds(tabs):
            continue
        for number, tab in tabs:
            if tab == "AnyIO":
                problems.append(
                    f'{name}:{number}: this `=== "AnyIO"` tab has no `=== "asyncio"` tab '
                    "before it in its set; show every correct version in both"
                )
            elif tab.startswith("asyncio"):
                problems.append(
                    f'{name}:{number}: this `=== "{tab}"` tab has no `=== "AnyIO"` tab '
                    "after it in its set; show every correct version in both"
                )
    problems += summary_problems(path)
    if not _has_performance_table(lines):
        problems.append(f"{name}:1: no `## Performance` section with a table of measured numbers")
    if not related_pages(path) - {path.name}:
        at = lines.index(RELATED_HEADING) + 1 if RELATED_HEADING in lines else 1
        problems.append(
            f"{name}:{at}: no `{RELATED_HEADING}` section linking another pattern page; "
            "link the pages this one relates to, each with a line on how"
        )
    return problems


def related_pages(path: Path) -> set[str]:
    """The pattern pages (file names) the page's `## Related patterns` section links."""
    lines = path.read_text().splitlines()
    if RELATED_HEADING not in lines:
        return set()
    targets = {
        match["target"].partition("#")[0].rsplit("/", 1)[-1]
        for line in section(path, RELATED_HEADING)
        for match in _LINK.finditer(_INLINE_CODE.sub("", line))
    }
    return targets & set(PATTERN_PAGES.values())


def pattern_set_problems(patterns: Path) -> list[str]:
    """The pattern pages as a set: each registered under its number, each related from another."""
    problems = []
    numbers = {slug: number for number, slug in PATTERN_PAGES.items()}
    for page in sorted(patterns.glob("*.md")):
        lines = page.read_text().splitlines()
        first = _first_content_line(lines)
        title = _TITLE.match(lines[first]) if first is not None else None
        if page.name not in numbers:
            problems.append(
                f"{relative(page)}:1: not registered: add it to PATTERN_PAGES in "
                "tests/pagecheck.py under its number (see docs/contributing.md)"
            )
        elif title and title["number"] != numbers[page.name]:
            problems.append(
                f"{relative(page)}:{first + 1}: the title says {title['number']}, PATTERN_PAGES "
                f"registers the page as {numbers[page.name]}; make them the same"
            )
    linked = {slug for page in patterns.glob("*.md") for slug in related_pages(page) - {page.name}}
    problems += [
        f"{relative(patterns / slug)}:1: no other pattern page links here from its "
        f"`{RELATED_HEADING}`; add this page there on each page it relates to"
        for slug in PATTERN_PAGES.values()
        if slug not in linked
    ]
    return problems


def tab_sets(lines: list[str]) -> list[list[tuple[int, str]]]:
    """Content tabs grouped into the sets Material draws: (line, tab name) each.

    Tabs at the same indentation belong to one set while every line between
    them is blank or indented under them.
    """
    sets: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    indent = -1
    for number, line in enumerate(lines, start=1):
        match = re.match(r'^(?P<indent> *)=== "(?P<name>[^"]+)"', line)
        if match and len(match["indent"]) == indent:
            current.append((number, match["name"]))
            continue
        if line.strip() and (indent < 0 or len(line) - len(line.lstrip()) <= indent):
            if current:
                sets.append(current)
            current, indent = [], -1
        if match:
            current, indent = [(number, match["name"])], len(match["indent"])
    if current:
        sets.append(current)
    return sets


def _pairs_both_worlds(tabs: list[tuple[int, str]]) -> bool:
    names = [tab for _, tab in tabs]
    return "AnyIO" in names and any(
        tab.startswith("asyncio") for tab in names[: names.index("AnyIO")]
    )


SUMMARY_HEADING = "## The short answer"
_FIGURE = re.compile(r"\b\d+(?: ms)?\b")


def summary_problems(path: Path) -> list[str]:
    """What the page's opening summary lacks, each at the line to fix.

    A pattern page opens, right after its title, with `## The short answer`:
    the rule (`**The rule:** ...`), the smallest before and after as complete
    programs (the after in an `asyncio` tab and an `AnyIO` tab), a table of
    the figures those programs printed, and links to the sections below.
    """
    name = relative(path)
    lines = path.read_text().splitlines()
    first = _first_content_line(lines)
    if first is None or not _TITLE.match(lines[first]):
        return []  # reported as a missing title
    heading = _first_content_line_after(lines, first + 1)
    if heading is None or lines[heading] != SUMMARY_HEADING:
        at = (heading if heading is not None else first) + 1
        return [
            f"{name}:{at}: right after the title, open with a `{SUMMARY_HEADING}` section: "
            "the rule, the smallest before and after (asyncio and AnyIO tabs), the measured "
            "figures and links to the sections below (see docs/contributing.md)"
        ]
    start = heading + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    body = lines[start:end]
    where = f"{name}:{heading + 1}: `{SUMMARY_HEADING}`"
    problems = []
    if not any(line.startswith("**The rule:**") for line in body):
        problems.append(f"{where} has no `**The rule:** ...` paragraph")
    python_fences = [line for line in body if _FENCE.match(line) and "python" in line]
    tabs = [m["name"] for line in body if (m := _TAB.match(line))]
    if len(python_fences) < 2 or ("asyncio", "AnyIO") not in itertools.pairwise(tabs):
        problems.append(
            f"{where} needs a python block before and an `asyncio` tab followed by an `AnyIO` "
            "tab after"
        )
    code = "\n".join(body)
    rows = table_rows(body)[1:]
    figures = [figure for row in rows for cell in row[1:] for figure in _FIGURE.findall(cell)]
    if not figures:
        problems.append(f"{where} has no table of the figures its blocks print")
    unprinted = [f for f in figures if not re.search(rf"#>.*(?<!\d){re.escape(f)}\b", code)]
    if unprinted:
        problems.append(
            f"{where}: figures {unprinted} are not in the output recorded under its blocks; "
            "print them and run `make update-examples`"
        )
    links = [m["target"] for line in body for m in _LINK.finditer(_INLINE_CODE.sub("", line))]
    if not any(target.startswith("#") for target in links):
        problems.append(f"{where} links to none of the sections below (`[...](#anchor)`)")
    return problems


def _first_content_line_after(lines: list[str], index: int) -> int | None:
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index if index < len(lines) else None


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


def recorded_lines(path: Path, title: str) -> list[str]:
    """What the block titled `title` printed, as recorded under its prints, in order."""
    block = block_titled(path, title)
    source = block.source.splitlines()
    # pytest-examples writes multi-line output as a string statement right
    # after its print, each line as printed: read those lines as they are.
    spans = [
        range(string.lineno, (string.end_lineno or string.lineno) + 1)
        for string, recorded in string_statements(block.source)
        if recorded
    ]
    found: list[tuple[int, list[str]]] = [
        (span[0], [line.strip() for line in source[span[0] : span[-1] - 1]]) for span in spans
    ]
    inside = {number for span in spans for number in span}
    found += [
        (number, [line.strip().removeprefix("#> ")])
        for number, line in enumerate(source, start=1)
        if line.strip().startswith("#> ") and number not in inside
    ]
    lines = [line for _, recorded in sorted(found) for line in recorded]
    assert lines, (
        f'{relative(path)}:{block.start_line}: block "{title}" has no recorded output: '
        "run make update-examples"
    )
    return lines


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


def table_differences(
    page: Path, heading: str, stated: Mapping[str, object], actual: Mapping[str, object]
) -> str:
    """Each row where a page's table and the recorded outputs disagree, at its line."""
    lines = page.read_text().splitlines()
    heading_line = next(
        (n for n, line in enumerate(lines, 1) if line.lstrip("# ").startswith(heading)), 1
    )

    def line_of(row: str) -> int:
        for number, line in enumerate(lines, 1):
            cells = line.strip().strip("|").split("|")
            if line.lstrip().startswith("|") and cells[0].strip() == row:
                return number
        return heading_line

    return "\n".join(
        f"{relative(page)}:{line_of(row)}: the {heading} table says "
        f"{stated.get(row, 'nothing')!s} for {row!r}, the recorded outputs "
        f"{actual.get(row, 'nothing')!s}. If a block changed, run `make update-examples`, "
        "then correct the table."
        for row in sorted({*stated, *actual})
        if stated.get(row) != actual.get(row)
    )
