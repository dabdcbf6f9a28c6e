"""What starting a task costs: asyncio.gather, asyncio.TaskGroup, AnyIO task groups,
and asyncio.TaskGroup on each Python, on asyncio's loop and uvloop, lazy and eager.

    make bench                                 # measure, then write the files below
    .venv/bin/python examples/parallelism_cost.py --render-only   # rewrite from the JSON

Each variant starts N trivial tasks (`async def nothing(): pass`) and waits
for all of them, for N = 10, 1,000 and 100,000, on the real clock. The
figure is the CPU time the process spends per task, in microseconds
(`time.process_time()`: on a busy machine other programs do not inflate it,
as they do wall time): the fastest of several samples, each of which starts
at least 50,000 tasks (small fan-outs are repeated inside one event loop).
Awaiting the same coroutines one after another, with no task at all, is
measured as the reference.

The second measurement runs on every Python given with `--other-python`
(`make bench` passes the venv of each version lane) as well as this one:
1,000 tasks in an asyncio.TaskGroup, on asyncio's own loop and on uvloop,
started lazily and (Python 3.12+) eagerly with asyncio.eager_task_factory,
for tasks that finish without suspending (a cache hit) and tasks that wait
once.

Writes:
- docs/assets/parallelism-cost.json         the figures and where they were measured;
- docs/assets/parallelism-cost.svg          the chart of the first measurement;
- docs/assets/parallelism-cost-python.svg   the chart of the second;
- the tables between the `figures` and `by-python` markers in docs/parallelism-cost.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

import anyio
import uvloop

ROOT = Path(__file__).resolve().parent.parent
JSON_PATH = ROOT / "docs" / "assets" / "parallelism-cost.json"
SVG_PATH = ROOT / "docs" / "assets" / "parallelism-cost.svg"
PYTHON_SVG_PATH = ROOT / "docs" / "assets" / "parallelism-cost-python.svg"
PAGE_PATH = ROOT / "docs" / "parallelism-cost.md"

TASK_COUNTS = (10, 1_000, 100_000)
TASKS_PER_SAMPLE = 50_000
SAMPLES = 5
COMMAND = "make bench"

T = TypeVar("T")


async def nothing() -> None:
    """The trivial task: returns at once, never suspends."""


# --- The variants: each starts n tasks and waits for all of them ------------------


async def awaited_in_turn(n: int) -> None:
    for _ in range(n):
        await nothing()


async def with_gather(n: int) -> None:
    await asyncio.gather(*(nothing() for _ in range(n)))


async def with_taskgroup(n: int) -> None:
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(nothing())


async def with_anyio_task_group(n: int) -> None:
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(nothing)


@dataclass(frozen=True)
class Variant:
    key: str
    label: str  # as the page and chart show it
    fan_out: Callable[[int], Coroutine[Any, Any, None]]
    backend: str  # "asyncio" (asyncio.run), "anyio-asyncio" or "anyio-trio"
    reference: bool = False  # not concurrent: the baseline

    def run(self, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if self.backend == "asyncio":
            return asyncio.run(main())
        return anyio.run(main, backend=self.backend.removeprefix("anyio-"))


VARIANTS = (
    Variant("await", "await one by one (no tasks)", awaited_in_turn, "asyncio", reference=True),
    Variant("gather", "asyncio.gather", with_gather, "asyncio"),
    Variant("taskgroup", "asyncio.TaskGroup", with_taskgroup, "asyncio"),
    Variant("anyio-asyncio", "AnyIO task group on asyncio", with_anyio_task_group, "anyio-asyncio"),
    Variant("anyio-trio", "AnyIO task group on Trio", with_anyio_task_group, "anyio-trio"),
)


# --- Measuring -------------------------------------------------------------------------


def per_task_us(variant: Variant, n: int) -> list[float]:
    """Microseconds per task, one figure per sample."""
    rounds = max(1, TASKS_PER_SAMPLE // n)

    async def main() -> list[float]:
        return await timed_samples(lambda: variant.fan_out(n), rounds * n, rounds)

    gc.collect()
    return variant.run(main)


def per_task_figure(samples: list[float]) -> float:
    """The figure a row shows: its fastest sample.

    A slower sample is the same work interrupted by something else (another
    program, the garbage collector of a previous run), so the fastest is the
    one that measures the work itself, as the timeit module's docs advise.
    """
    return round(min(samples), 2)


def rederive(figures: dict[str, Any]) -> dict[str, Any]:
    """Every row's figure computed again from its recorded samples."""
    rows = [*figures["results"]]
    rows += [row for run in figures["by_python"]["runs"] for row in run["results"]]
    for row in rows:
        if row.get("samples_us"):
            row["per_task_us"] = per_task_figure(row["samples_us"])
    return figures


async def timed_samples(
    fan_out: Callable[[], Coroutine[Any, Any, None]], tasks: int, rounds: int
) -> list[float]:
    """CPU microseconds per task of `rounds` fan-outs, SAMPLES times, after one warm-up.

    The loop does nothing but run these tasks, so the process's CPU time is
    the loop's work, without the time other programs held the CPU.
    """
    await fan_out()
    samples = []
    for _ in range(SAMPLES):
        started = time.process_time()
        for _ in range(rounds):
            await fan_out()
        samples.append((time.process_time() - started) / tasks * 1e6)
    return samples


def peak_bytes_per_task(variant: Variant, n: int) -> float:
    """Peak memory Python allocated while n tasks ran, per task."""

    async def main() -> int:
        tracemalloc.start()
        try:
            await variant.fan_out(n)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    gc.collect()
    return variant.run(main) / n


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def measure(other_pythons: list[str]) -> dict[str, Any]:
    """Everything on this Python, then the per-Python figures on each other one."""
    load_average = round(os.getloadavg()[0], 1)  # how busy the machine was when it started
    results = []
    for variant in VARIANTS:
        for n in TASK_COUNTS:
            samples = per_task_us(variant, n)
            results.append(
                {
                    "variant": variant.key,
                    "tasks": n,
                    "per_task_us": per_task_figure(samples),
                    "samples_us": [round(sample, 2) for sample in samples],
                }
            )
            print(f"{variant.label:<32} {n:>7} tasks  {results[-1]['per_task_us']:7.2f} µs/task")
    memory = {
        variant.key: round(peak_bytes_per_task(variant, TASK_COUNTS[-1]))
        for variant in VARIANTS
        if not variant.reference
    }
    return {
        "measured_on": date.today().isoformat(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": load_average,
        "packages": {name: version(name) for name in ("anyio", "trio")},
        "command": COMMAND,
        "samples": SAMPLES,
        "tasks_per_sample": TASKS_PER_SAMPLE,
        "variants": {variant.key: variant.label for variant in VARIANTS},
        "results": results,
        "peak_bytes_per_task_at_100000": memory,
        "by_python": {
            "tasks": SETUP_TASKS,
            "loops": LOOPS,
            "starts": STARTS,
            "workloads": WORKLOADS,
            "runs": [measure_this_python(), *(measure_on(python) for python in other_pythons)],
        },
    }


# --- Each Python: asyncio's loop or uvloop, lazy or eager tasks ------------------------

SETUP_TASKS = 1_000
LOOPS = {"asyncio": "asyncio's own loop", "uvloop": "uvloop"}
STARTS = {"lazy": "lazy (the default)", "eager": "eager (eager_task_factory)"}
WORKLOADS = {
    "cache-hit": "finishes without suspending (a cache hit)",
    "waits": "waits once (await asyncio.sleep(0))",
}
EAGER_SINCE = (3, 12)  # asyncio.eager_task_factory


async def waits_once() -> None:
    """A task that suspends once, as any task waiting on I/O does."""
    await asyncio.sleep(0)


WORKLOAD_TASKS: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
    "cache-hit": nothing,
    "waits": waits_once,
}


def python_version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2])


def has_eager(python: str) -> bool:
    return python_version_tuple(python) >= EAGER_SINCE


def new_loop(loop_name: str, start: str) -> asyncio.AbstractEventLoop:
    """A fresh event loop of that kind, making eager tasks if asked."""
    loop = uvloop.new_event_loop() if loop_name == "uvloop" else asyncio.new_event_loop()
    if start == "eager":
        if sys.version_info < (3, 12):  # EAGER_SINCE, spelled out for type checkers
            raise ValueError("eager tasks need Python 3.12 or newer")
        loop.set_task_factory(asyncio.eager_task_factory)
    return loop


def setup_per_task_us(loop_name: str, start: str, workload: str) -> list[float]:
    """Microseconds per task for SETUP_TASKS tasks in an asyncio.TaskGroup."""
    work = WORKLOAD_TASKS[workload]
    rounds = max(1, TASKS_PER_SAMPLE // SETUP_TASKS)

    async def fan_out() -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(SETUP_TASKS):
                tg.create_task(work())

    gc.collect()
    loop = new_loop(loop_name, start)
    try:
        main = timed_samples(fan_out, rounds * SETUP_TASKS, rounds)
        try:
            # The loop creates the task through its factory, which is where an
            # eager factory the loop does not support fails.
            task = loop.create_task(main)
        except TypeError:
            main.close()
            raise
        return loop.run_until_complete(task)
    finally:
        loop.close()


def measure_this_python() -> dict[str, Any]:
    """Every loop, start and workload this Python has (no eager start before 3.12)."""
    python = platform.python_version()
    results = []
    for loop_name in LOOPS:
        for start in STARTS:
            if start == "eager" and not has_eager(python):
                continue
            for workload in WORKLOADS:
                row: dict[str, Any] = {"loop": loop_name, "start": start, "workload": workload}
                try:
                    samples = setup_per_task_us(loop_name, start, workload)
                except TypeError as exc:  # the loop cannot make this factory's tasks
                    row |= {"per_task_us": None, "error": f"{type(exc).__name__}: {exc}"}
                    print(f"Python {python:<8} {loop_name:<8} {start:<6} {workload:<10} {exc}")
                else:
                    row |= {
                        "per_task_us": per_task_figure(samples),
                        "samples_us": [round(sample, 2) for sample in samples],
                    }
                    print(
                        f"Python {python:<8} {loop_name:<8} {start:<6} {workload:<10} "
                        f"{row['per_task_us']:7.2f} µs/task"
                    )
                results.append(row)
    return {"python": python, "uvloop": version("uvloop"), "results": results}


def measure_on(python: str) -> dict[str, Any]:
    """The per-Python figures, measured by another interpreter running this file."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "figures.json"
        subprocess.run([python, __file__, "--this-python-only", str(out)], check=True)
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


# --- Writing the page's table ------------------------------------------------------------


def figure(figures: dict[str, Any], variant: str, tasks: int) -> float:
    for row in figures["results"]:
        if row["variant"] == variant and row["tasks"] == tasks:
            return float(row["per_task_us"])
    raise KeyError((variant, tasks))


def table(figures: dict[str, Any]) -> str:
    """The Markdown table the page shows, made from the figures."""
    counts = sorted({row["tasks"] for row in figures["results"]})
    memory = figures["peak_bytes_per_task_at_100000"]
    head = ["Variant", *(f"{n:,} tasks" for n in counts), "Memory per task"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", *("--:" for _ in head[1:])]) + "|",
    ]
    for key, label in figures["variants"].items():
        cells = [f"{figure(figures, key, n):.2f} µs" for n in counts]
        bytes_per_task = f"{memory[key] / 1000:.1f} kB" if key in memory else "-"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {bytes_per_task} |")
    return "\n".join(lines)


def measured_where(figures: dict[str, Any]) -> str:
    packages = ", ".join(f"{name} {ver}" for name, ver in figures["packages"].items())
    return (
        f"Measured on {figures['measured_on']} with Python {figures['python']} "
        f"({packages}) on {figures['cpu']}, {figures['cores']} cores{busy(figures)}."
    )


def busy(figures: dict[str, Any]) -> str:
    """How loaded the machine was when the benchmark started, if recorded."""
    if "load_average" not in figures:
        return ""
    return f", load average {figures['load_average']} when it started"


FIGURES_BLOCK = re.compile(r"(<!-- figures:start -->).*?(<!-- figures:end -->)", re.S)


def figures_block(figures: dict[str, Any]) -> str:
    return f"{table(figures)}\n\n{measured_where(figures)}"


BY_PYTHON_BLOCK = re.compile(r"(<!-- by-python:start -->).*?(<!-- by-python:end -->)", re.S)


def by_python_row(run: dict[str, Any], loop_name: str, start: str, workload: str) -> dict[str, Any]:
    for row in run["results"]:
        if (row["loop"], row["start"], row["workload"]) == (loop_name, start, workload):
            return dict(row)
    raise KeyError((run["python"], loop_name, start, workload))


def by_python_figure(run: dict[str, Any], loop_name: str, start: str, workload: str) -> float:
    """Microseconds per task; KeyError if not measured, ValueError if it did not run."""
    row = by_python_row(run, loop_name, start, workload)
    if row["per_task_us"] is None:
        raise ValueError(row["error"])
    return float(row["per_task_us"])


def by_python_cell(run: dict[str, Any], loop_name: str, start: str, workload: str) -> str:
    """What the table shows for one combination."""
    if start == "eager" and not has_eager(run["python"]):
        return "needs Python 3.12+"
    row = by_python_row(run, loop_name, start, workload)
    if row["per_task_us"] is None:
        return f"fails: {row['error'].split(':')[0]}"
    return f"{row['per_task_us']:.2f} µs"


def failures(figures: dict[str, Any]) -> list[str]:
    """One line per combination that did not run, with its error."""
    by = figures["by_python"]
    return [
        f"Python {run['python']}, {by['loops'][row['loop']]}, {row['start']}: {row['error']}"
        for run in python_runs(figures)
        for row in run["results"]
        if row["per_task_us"] is None and row["workload"] == next(iter(by["workloads"]))
    ]


def python_runs(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-Python measurements, oldest Python first."""
    runs: list[dict[str, Any]] = figures["by_python"]["runs"]
    return sorted(runs, key=lambda run: python_version_tuple(run["python"]))


def python_table(figures: dict[str, Any]) -> str:
    """The table of every Python, loop, task start and workload measured."""
    by = figures["by_python"]
    head = [
        "Python",
        "Loop",
        "Task start",
        *(f"Task that {label}" for label in by["workloads"].values()),
    ]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---", "---", *("--:" for _ in by["workloads"])]) + "|",
    ]
    for run in python_runs(figures):
        for loop_name, loop_label in by["loops"].items():
            for start, start_label in by["starts"].items():
                cells = [
                    by_python_cell(run, loop_name, start, workload) for workload in by["workloads"]
                ]
                lines.append(
                    f"| {run['python']} | {loop_label} | {start_label} | "
                    + " | ".join(cells)
                    + " |"
                )
    return "\n".join(lines)


def measured_where_by_python(figures: dict[str, Any]) -> str:
    by = figures["by_python"]
    uvloop_versions = sorted({run["uvloop"] for run in by["runs"]})
    return (
        f"Measured on {figures['measured_on']}: {by['tasks']:,} tasks in one asyncio.TaskGroup, "
        f"uvloop {', '.join(uvloop_versions)}, on {figures['cpu']}, {figures['cores']} cores"
        f"{busy(figures)}."
    )


def by_python_block(figures: dict[str, Any]) -> str:
    failed = "".join(f"\n\nDid not run: {line}." for line in failures(figures))
    return f"{python_table(figures)}\n\n{measured_where_by_python(figures)}{failed}"


def write_page(figures: dict[str, Any], page: Path = PAGE_PATH) -> None:
    """Replace the text between each pair of markers on the page with its table."""
    text = page.read_text()
    blocks = {
        "figures": (FIGURES_BLOCK, figures_block),
        "by-python": (BY_PYTHON_BLOCK, by_python_block),
    }
    for name, (markers, make_block) in blocks.items():
        if not markers.search(text):
            raise SystemExit(f"{page}: no <!-- {name}:start --> ... <!-- {name}:end --> markers")
        text = _between(markers, text, make_block(figures))
    page.write_text(text)


def _between(markers: re.Pattern[str], text: str, content: str) -> str:
    return markers.sub(lambda m: f"{m[1]}\n{content}\n{m[2]}", text)


# --- Drawing the chart -----------------------------------------------------------------------

COLORS = {
    "await": "#8a8f98",
    "gather": "#3f51b5",
    "taskgroup": "#00897b",
    "anyio-asyncio": "#e67700",
    "anyio-trio": "#b0309c",
}
_STYLE = """
    .card { fill: #ffffff; stroke: #d0d4dc; }
    text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill: #1f2329; }
    .muted { fill: #5b616b; }
    .grid { stroke: #e3e6eb; }
    @media (prefers-color-scheme: dark) {
      .card { fill: #1e2129; stroke: #3a3f4b; }
      text { fill: #e6e8ec; }
      .muted { fill: #a9afba; }
      .grid { stroke: #343946; }
    }
"""


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class _Frame:
    """Where a bar chart's plot sits in its SVG, and its microsecond scale."""

    width: int
    height: int
    top: int
    left: int
    plot_width: int
    plot_bottom: int
    scale_max: float
    step: float


def _chart_frame(
    frame: _Frame,
    title: str,
    title_size: int,
    descriptions: tuple[str, str],
    ids: tuple[str, str],
) -> list[str]:
    """A chart's card, title, text alternative and microsecond axis, as SVG parts.

    `descriptions` is (the text alternative, the line shown under the title);
    `ids` are the title's and the description's element ids.
    """
    width, height = frame.width, frame.height
    desc, subtitle = descriptions
    title_id, desc_id = ids
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}">',
        f'<title id="{title_id}">{_esc(title)}</title>',
        f'<desc id="{desc_id}">{_esc(desc)}</desc>',
        f"<style>{_STYLE}</style>",
        f'<rect class="card" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="8"/>',
        f'<text x="20" y="30" font-size="{title_size}" font-weight="600">{_esc(title)}</text>',
        f'<text class="muted" x="20" y="52" font-size="12">{_esc(subtitle)}</text>',
    ]
    tick = 0.0
    while tick <= frame.scale_max + 1e-9:
        tx = frame.left + frame.plot_width * tick / frame.scale_max
        parts.append(
            f'<line class="grid" x1="{tx:.1f}" y1="{frame.top - 8}" '
            f'x2="{tx:.1f}" y2="{frame.plot_bottom + 4}"/>'
        )
        parts.append(
            f'<text class="muted" x="{tx:.1f}" y="{frame.plot_bottom + 20}" font-size="11" '
            f'text-anchor="middle">{tick:g}</text>'
        )
        tick += frame.step
    parts.append(
        f'<text class="muted" x="{frame.left + frame.plot_width / 2:.1f}" '
        f'y="{frame.plot_bottom + 40}" font-size="12" text-anchor="middle">'
        "microseconds per task</text>"
    )
    return parts


def svg(figures: dict[str, Any]) -> str:
    """A grouped bar chart: microseconds per task, one group per task count."""
    counts = sorted({row["tasks"] for row in figures["results"]})
    keys = list(figures["variants"])
    width, left, right, top = 760, 250, 70, 78
    bar, gap, group_gap = 16, 4, 26
    group_height = len(keys) * (bar + gap) - gap
    plot_bottom = top + len(counts) * (group_height + group_gap) - group_gap
    height = plot_bottom + 62
    biggest = max(float(row["per_task_us"]) for row in figures["results"])
    step = _nice_step(biggest / 5)
    scale_max = step * (int(biggest / step) + 1)
    plot_width = width - left - right

    def x(value: float) -> float:
        return left + plot_width * value / scale_max

    title = "Cost of starting a trivial task (µs per task, lower is better)"
    where = measured_where(figures)
    parts = _chart_frame(
        _Frame(width, height, top, left, plot_width, plot_bottom, scale_max, step),
        title,
        16,
        (where, where),
        ("title", "desc"),
    )
    for group, n in enumerate(counts):
        y0 = top + group * (group_height + group_gap)
        parts.append(
            f'<text x="20" y="{y0 + group_height / 2 + 5:.1f}" font-size="13" '
            f'font-weight="600">{n:,} tasks</text>'
        )
        for index, key in enumerate(keys):
            value = figure(figures, key, n)
            y = y0 + index * (bar + gap)
            label = figures["variants"][key]
            parts.append(
                f'<text class="muted" x="{left - 8}" y="{y + bar - 4}" font-size="11" '
                f'text-anchor="end">{_esc(label)}</text>'
            )
            parts.append(
                f'<rect x="{left}" y="{y}" width="{max(1.0, x(value) - left):.1f}" '
                f'height="{bar}" rx="2" fill="{COLORS[key]}"><title>{_esc(label)}, {n:,} tasks: '
                f"{value:.2f} µs per task</title></rect>"
            )
            parts.append(
                f'<text x="{x(value) + 5:.1f}" y="{y + bar - 4}" font-size="11">{value:.2f}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


PYTHON_BARS = {  # (start, workload): colour
    ("lazy", "cache-hit"): "#3f51b5",
    ("eager", "cache-hit"): "#00897b",
    ("lazy", "waits"): "#e67700",
    ("eager", "waits"): "#b0309c",
}


def python_svg(figures: dict[str, Any]) -> str:
    """Bars per task for each Python and loop: lazy and eager, cache hit and one wait."""
    by = figures["by_python"]
    groups = [(run, loop_name) for run in python_runs(figures) for loop_name in by["loops"]]
    width, left, right, top = 760, 250, 90, 78
    bar, gap, group_gap = 14, 3, 22
    group_height = len(PYTHON_BARS) * (bar + gap) - gap
    plot_bottom = top + len(groups) * (group_height + group_gap) - group_gap
    height = plot_bottom + 62
    biggest = max(
        float(row["per_task_us"])
        for run in by["runs"]
        for row in run["results"]
        if row["per_task_us"] is not None
    )
    step = _nice_step(biggest / 5)
    scale_max = step * (int(biggest / step) + 1)
    plot_width = width - left - right

    def x(value: float) -> float:
        return left + plot_width * value / scale_max

    title = f"Cost per task, {by['tasks']:,} tasks in an asyncio.TaskGroup (µs, lower is better)"
    where = measured_where_by_python(figures)
    parts = _chart_frame(
        _Frame(width, height, top, left, plot_width, plot_bottom, scale_max, step),
        title,
        15,
        (f"{where} The table below the chart has every figure.", where),
        ("ptitle", "pdesc"),
    )
    for group, (run, loop_name) in enumerate(groups):
        y0 = top + group * (group_height + group_gap)
        parts.append(
            f'<text x="20" y="{y0 + group_height / 2 + 5:.1f}" font-size="13" '
            f'font-weight="600">{_esc(run["python"])}, {_esc(loop_name)}</text>'
        )
        for index, ((start, workload), colour) in enumerate(PYTHON_BARS.items()):
            y = y0 + index * (bar + gap)
            label = f"{start}, {'cache hit' if workload == 'cache-hit' else 'waits once'}"
            parts.append(
                f'<text class="muted" x="{left - 8}" y="{y + bar - 3}" font-size="11" '
                f'text-anchor="end">{_esc(label)}</text>'
            )
            cell = by_python_cell(run, loop_name, start, workload)
            if not cell.endswith(" µs"):  # not measured: say why instead of a bar
                parts.append(
                    f'<text class="muted" x="{left + 4}" y="{y + bar - 3}" font-size="11">'
                    f"{_esc(cell)}</text>"
                )
                continue
            value = by_python_figure(run, loop_name, start, workload)
            parts.append(
                f'<rect x="{left}" y="{y}" width="{max(1.0, x(value) - left):.1f}" '
                f'height="{bar}" rx="2" fill="{colour}"><title>Python {_esc(run["python"])}, '
                f"{_esc(loop_name)}, {_esc(label)}: {value:.2f} µs per task</title></rect>"
            )
            parts.append(
                f'<text x="{x(value) + 5:.1f}" y="{y + bar - 3}" font-size="11">{value:.2f}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least `raw`."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500):
        if step >= raw:
            return step
    return 1000


# --- Main --------------------------------------------------------------------------------------


def write_all(figures: dict[str, Any]) -> None:
    JSON_PATH.parent.mkdir(parents=True, exist_ok=True)
    JSON_PATH.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    SVG_PATH.write_text(svg(figures))
    PYTHON_SVG_PATH.write_text(python_svg(figures))
    write_page(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="do not measure; rewrite the charts and the page's tables from the JSON's samples",
    )
    parser.add_argument(
        "--other-python",
        action="append",
        default=[],
        metavar="PYTHON",
        help="also measure the per-Python figures with this interpreter (repeatable)",
    )
    parser.add_argument(
        "--this-python-only",
        type=Path,
        metavar="OUT",
        help="measure only this Python's per-Python figures and write them to OUT (JSON)",
    )
    options = parser.parse_args()
    if options.this_python_only:
        options.this_python_only.write_text(json.dumps(measure_this_python()))
        return
    if options.render_only:
        figures = rederive(json.loads(JSON_PATH.read_text()))
    else:
        figures = measure(options.other_python)
    write_all(figures)
    print(
        f"wrote {JSON_PATH.relative_to(ROOT)}, {SVG_PATH.relative_to(ROOT)}, "
        f"{PYTHON_SVG_PATH.relative_to(ROOT)} and the tables in {PAGE_PATH.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
