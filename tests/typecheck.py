"""Type-check every Python block on the site, and examples/, with mypy --strict.

Each block is a complete program, so each is written to a module of its own,
and one mypy run checks all of them together with the modules in examples/
they import, with the settings in pyproject.toml (`[tool.mypy]`). Every error
is reported once, at its Markdown line (`docs/page.md:LINE: error: ...`);
errors in examples/ keep their `.py` file and line. A block that only
includes a module (`--8<-- "examples/x.py"`) is not written out: the module is
checked itself. Comments that switch the checker off (`# type: ignore`,
`# mypy: ...`) are errors too: a block that needs a cast says why in prose.

The page template (tests/samples/pattern_template.md) is checked with the
site's pages, since new pages start as a copy of it.

For contributors, the same check and messages, without pytest:

    .venv/bin/python -m tests.typecheck                  # every page, examples/
    .venv/bin/python -m tests.typecheck docs/index.md    # one page, examples/
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
import time
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_examples import CodeExample, find_examples

from tests.harness import DOCS, ROOT, Settings, includes_only, location, relative

TEMPLATE = ROOT / "tests" / "samples" / "pattern_template.md"
SITE_PAGES = [*sorted(DOCS.rglob("*.md")), TEMPLATE]
EXAMPLE_MODULES = sorted((ROOT / "examples").glob("*.py"))
# Kept between runs (and ignored by git): a warm cache makes a run take about a second.
CACHE_DIR = ROOT / ".mypy_cache"
COMMAND = ".venv/bin/python -m tests.typecheck"

# Output settings only; what is checked is set in pyproject.toml.
_MYPY_OUTPUT = [
    "--no-pretty",
    "--no-error-summary",
    "--no-color-output",
    "--hide-column-numbers",
    "--show-error-codes",
    "--show-absolute-path",
]
_MYPY_LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<severity>error|note): (?P<message>.*)$")
_UNPLACED = "(unplaced)"
_SUPPRESSION = re.compile(r"#\s*(type:\s*ignore|mypy:)")


@dataclass(frozen=True)
class Problem:
    """One line of what mypy said, placed in the Markdown or Python file."""

    file: str  # "docs/page.md" or "examples/module.py"
    line: int  # 1-based, in that file
    severity: str  # "error", or "note" for the explanation that follows an error
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"


@dataclass(frozen=True)
class Source:
    """A block or a module, as a message names it."""

    id: str  # `block_id(example)`, or the module's path: "examples/module.py"
    what: str  # "the block at docs/page.md:LINE", or "examples/module.py"
    file: str  # the page or module to check again: "docs/page.md"


@dataclass
class Report:
    """What one mypy run found, by block or module."""

    sources: dict[str, Source] = field(default_factory=dict)
    problems: dict[str, list[Problem]] = field(default_factory=dict)
    # What mypy said that names no block or module (a crash, a bad setting).
    unplaced: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, source_id: str) -> list[Problem]:
        """The problems of one block (`block_id`) or module (its path, `examples/x.py`)."""
        return self.problems.get(source_id, [])

    def add(self, source_id: str, problem: Problem) -> None:
        self.problems.setdefault(source_id, []).append(problem)

    def in_order(self) -> list[tuple[Source, list[Problem]]]:
        """Blocks in page order, then modules; each one's errors by line, notes after theirs."""
        return [
            (source, _by_line(self.problems[source.id]))
            for source in self.sources.values()
            if source.id in self.problems
        ]

    @property
    def errors(self) -> int:
        found = sum(p.severity == "error" for ps in self.problems.values() for p in ps)
        return found + len(self.unplaced)


def _by_line(problems: list[Problem]) -> list[Problem]:
    """Errors sorted by line, each followed by the notes mypy printed after it."""
    groups: list[list[Problem]] = []
    for problem in problems:
        if problem.severity == "note" and groups:
            groups[-1].append(problem)
        else:
            groups.append([problem])
    groups.sort(key=lambda group: group[0].line)
    return [problem for group in groups for problem in group]


def block_id(example: CodeExample) -> str:
    """`docs/page.md:FIRST-LAST`, as the block's run items in tests/test_docs.py are named."""
    return f"{relative(example.path)}:{example.start_line}-{example.end_line}"


def blocks(pages: Iterable[Path]) -> list[CodeExample]:
    """The blocks of these pages that are programs (not an include of a module)."""
    return [example for example in find_examples(*pages) if not includes_only(example)]


def _module_name(example: CodeExample) -> str:
    """A unique, importable module name for a block: `docs_index_md_133_157`."""
    name = re.sub(r"\W", "_", f"{relative(example.path)}_{example.start_line}_{example.end_line}")
    return name if name[0].isalpha() else f"block_{name}"


def _block_problem(example: CodeExample, offset: int, severity: str, message: str) -> Problem:
    """A problem on a block's line `offset` (0 = its first line), placed in its page."""
    return Problem(relative(example.path), example.start_line + 1 + offset, severity, message)


def _suppressions(source: str) -> list[tuple[int, str]]:
    """(0-based line, message) for each `# type: ignore` or `# mypy: ...` comment."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    try:
        return [
            (
                token.start[0] - 1,
                f"`{token.string}` switches the type check off on this line",
            )
            for token in tokens
            if token.type == tokenize.COMMENT and _SUPPRESSION.match(token.string)
        ]
    except (tokenize.TokenError, SyntaxError):
        return []  # mypy reports the syntax error itself


def check(
    pages: Sequence[Path] = SITE_PAGES,
    workdir: Path | None = None,
    modules: Sequence[Path] = EXAMPLE_MODULES,
) -> Report:
    """Type-check the blocks of `pages` and the `modules`, in one mypy run.

    The blocks are written to `workdir` (a temporary folder when None). Every
    module in examples/ is checked, since blocks import them; only the
    problems of `modules` are reported.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory() as temporary:
            return check(pages, Path(temporary), modules)
    started = time.perf_counter()
    report = Report()
    block_modules: dict[str, CodeExample] = {}
    # A block for newer Pythons (python="3.12+") is checked against the
    # standard library of the oldest Python it is for.
    by_python: dict[str, list[str]] = {}
    for example in blocks(pages):
        name = _module_name(example)
        (workdir / f"{name}.py").write_text(example.source)
        block_modules[name] = example
        by_python.setdefault(_checked_python(example), []).append(name)
        source = Source(
            block_id(example), f"the block at {location(example)}", relative(example.path)
        )
        report.sources[source.id] = source
        for offset, message in _suppressions(example.source):
            report.add(source.id, _block_problem(example, offset, "error", message))
    wanted = {path.resolve() for path in modules}
    for path in sorted(wanted):
        name = relative(path)
        report.sources[name] = Source(name, name, name)
        for offset, message in _suppressions(path.read_text()):
            report.add(name, Problem(name, offset + 1, "error", message))

    for python in sorted(by_python or {"": []}):
        _run_mypy(python, by_python.get(python, []), workdir, block_modules, wanted, report)
    report.seconds = time.perf_counter() - started
    return report


def _checked_python(example: CodeExample) -> str:
    """The Python a block is type-checked for: the oldest its fence allows, else ''."""
    settings = Settings.of(example)
    if settings.python is None:
        return ""
    return ".".join(map(str, settings.python.low))


def _run_mypy(
    python: str,
    names: Sequence[str],
    workdir: Path,
    block_modules: dict[str, CodeExample],
    wanted: set[Path],
    report: Report,
) -> None:
    """One mypy run: these blocks, for this Python ('' = pyproject's), with examples/."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(CACHE_DIR if not python else CACHE_DIR / python),
            *(["--python-version", python] if python else []),
            *_MYPY_OUTPUT,
            *(str(path) for path in EXAMPLE_MODULES),
            *(str(workdir / f"{name}.py") for name in names),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    # examples/ is checked in every run; its problems are reported from the first.
    seen = {path for path in wanted} if not python else set()
    errors_seen = _place(result.stdout, block_modules, seen, report)
    if result.returncode == 2 and errors_seen:
        report.unplaced.append(
            "mypy stopped at the error(s) above (a syntax error stops it) without checking "
            "the other blocks and modules: fix those first"
        )
    elif result.returncode not in (0, 1) or (result.returncode == 1 and not errors_seen):
        if python and result.returncode == 1:
            return  # only examples/ errors, already reported by the first run
        report.unplaced.append(
            f"mypy exited with {result.returncode}:\n{result.stdout}{result.stderr}".rstrip()
        )


def _place(
    output: str, block_modules: dict[str, CodeExample], wanted: set[Path], report: Report
) -> int:
    """File each line of mypy's output under its block or module; count the errors.

    A note explains the error printed before it, so it goes with that error,
    also when it points elsewhere (a library's "defined here").
    """
    errors = 0
    goes_to: str | None = None  # where the last error went: a source id, _UNPLACED or nowhere
    for text in output.splitlines():
        match = _MYPY_LINE.match(text)
        if match is None:
            if text.strip():
                report.unplaced.append(text)
            continue
        path = Path(match["path"]).resolve()
        line = int(match["line"])
        severity, message = match["severity"], match["message"]
        problem = Problem(relative(path), line, severity, message)
        own: str | None = _UNPLACED
        if path in wanted:
            own = relative(path)
        elif path.parent == ROOT / "examples":
            own = None  # a module left out on the command line
        elif path.stem in block_modules:
            # By module name, not path: mypy repeats a cached module's errors
            # with the path it had when it was checked, an earlier run's folder.
            example = block_modules[path.stem]
            own = block_id(example)
            problem = _block_problem(example, line - 1, severity, message)
        if severity == "error":
            errors += 1
        if severity == "error" or errors == 0:
            goes_to = own
        if goes_to == _UNPLACED:
            report.unplaced.append(str(problem))
        elif goes_to is not None:
            report.add(goes_to, problem)
    return errors


def describe(source: Source, problems: Sequence[Problem]) -> str:
    """What mypy found in one block or module, and what to do about it."""
    errors = sum(problem.severity == "error" for problem in problems)
    lines = [str(problem) for problem in problems]
    lines += [
        f"mypy --strict found {_count(errors, 'error')} in {source.what}.",
        "Fix the code or its annotations. If only a cast can say what the code",
        "knows, cast, and say why in the prose next to it (no `# type: ignore`).",
        f"Check again: {COMMAND} {source.file}",
    ]
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Check the pages (and examples/ modules) named on the command line, or all of them."""
    args = [Path(arg).resolve() for arg in (sys.argv[1:] if argv is None else argv)]
    pages = [path for path in args if path.suffix == ".md"] or (SITE_PAGES if not args else [])
    modules = [path for path in args if path.suffix == ".py"] or EXAMPLE_MODULES
    unknown = [arg for arg in args if arg.suffix not in (".md", ".py") or not arg.is_file()]
    if unknown:
        print(f"not a Markdown page or a Python module: {', '.join(map(str, unknown))}")
        return 2
    report = check(pages, modules=modules)
    for source, problems in report.in_order():
        print(describe(source, problems), end="\n\n")
    for text in report.unplaced:
        print(text)
    modules_checked = sum(source.id.endswith(".py") for source in report.sources.values())
    blocks_checked = len(report.sources) - modules_checked
    print(
        f"{_count(report.errors, 'type error')} in {_count(blocks_checked, 'block')} and "
        f"{_count(modules_checked, 'module')} (mypy --strict, {report.seconds:.1f} s)"
    )
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
