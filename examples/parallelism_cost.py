"""What starting a task costs: asyncio.gather, asyncio.TaskGroup, AnyIO task groups.

    make bench                                 # measure, then write the files below
    .venv/bin/python examples/parallelism_cost.py --render-only   # rewrite from the JSON

Each variant starts N trivial tasks (`async def nothing(): pass`) and waits
for all of them, for N = 10, 1,000 and 100,000, on the real clock. The
figure is wall time per task, in microseconds: the median of several
samples, each of which starts at least 50,000 tasks (small fan-outs are
repeated inside one event loop). Awaiting the same coroutines one after
another, with no task at all, is measured as the reference.

Writes:
- docs/assets/parallelism-cost.json  the figures and where they were measured;
- docs/assets/parallelism-cost.svg   the chart on the page;
- the table between the `figures` markers in docs/parallelism-cost.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import re
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
JSON_PATH = ROOT / "docs" / "assets" / "parallelism-cost.json"
SVG_PATH = ROOT / "docs" / "assets" / "parallelism-cost.svg"
PAGE_PATH = ROOT / "docs" / "parallelism-cost.md"

TASK_COUNTS = (10, 1_000, 100_000)
TASKS_PER_SAMPLE = 50_000
SAMPLES = 5
COMMAND = "make bench"


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
    fan_out: Callable[[int], Awaitable[None]]
    backend: str  # "asyncio" (asyncio.run), "anyio-asyncio" or "anyio-trio"
    reference: bool = False  # not concurrent: the baseline

    def run(self, main: Callable[[], Awaitable[Any]]) -> Any:
        if self.backend == "asyncio":
            return asyncio.run(main())  # type: ignore[arg-type]
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
        await variant.fan_out(n)  # warm up
        samples = []
        for _ in range(SAMPLES):
            started = time.perf_counter()
            for _ in range(rounds):
                await variant.fan_out(n)
            samples.append((time.perf_counter() - started) / (rounds * n) * 1e6)
        return samples

    gc.collect()
    return variant.run(main)


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


def measure() -> dict[str, Any]:
    results = []
    for variant in VARIANTS:
        for n in TASK_COUNTS:
            samples = per_task_us(variant, n)
            results.append(
                {
                    "variant": variant.key,
                    "tasks": n,
                    "per_task_us": round(statistics.median(samples), 2),
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
        "packages": {name: version(name) for name in ("anyio", "trio")},
        "command": COMMAND,
        "samples": SAMPLES,
        "tasks_per_sample": TASKS_PER_SAMPLE,
        "variants": {variant.key: variant.label for variant in VARIANTS},
        "results": results,
        "peak_bytes_per_task_at_100000": memory,
    }


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
        f"({packages}) on {figures['cpu']}, {figures['cores']} cores."
    )


FIGURES_BLOCK = re.compile(r"(<!-- figures:start -->).*?(<!-- figures:end -->)", re.S)


def figures_block(figures: dict[str, Any]) -> str:
    return f"{table(figures)}\n\n{measured_where(figures)}"


def write_page(figures: dict[str, Any], page: Path = PAGE_PATH) -> None:
    text = page.read_text()
    if not FIGURES_BLOCK.search(text):
        raise SystemExit(f"{page}: no <!-- figures:start --> ... <!-- figures:end --> markers")
    page.write_text(FIGURES_BLOCK.sub(lambda m: f"{m[1]}\n{figures_block(figures)}\n{m[2]}", text))


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
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="title desc">',
        f'<title id="title">{_esc(title)}</title>',
        f'<desc id="desc">{_esc(measured_where(figures))}</desc>',
        f"<style>{_STYLE}</style>",
        f'<rect class="card" x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="8"/>',
        f'<text x="20" y="30" font-size="16" font-weight="600">{_esc(title)}</text>',
        f'<text class="muted" x="20" y="52" font-size="12">{_esc(measured_where(figures))}</text>',
    ]
    tick = 0.0
    while tick <= scale_max + 1e-9:
        tx = x(tick)
        parts.append(
            f'<line class="grid" x1="{tx:.1f}" y1="{top - 8}" '
            f'x2="{tx:.1f}" y2="{plot_bottom + 4}"/>'
        )
        parts.append(
            f'<text class="muted" x="{tx:.1f}" y="{plot_bottom + 20}" font-size="11" '
            f'text-anchor="middle">{tick:g}</text>'
        )
        tick += step
    parts.append(
        f'<text class="muted" x="{left + plot_width / 2:.1f}" y="{plot_bottom + 40}" '
        'font-size="12" text-anchor="middle">microseconds per task</text>'
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
    write_page(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="do not measure; rewrite the chart and the page's table from the JSON",
    )
    options = parser.parse_args()
    figures = json.loads(JSON_PATH.read_text()) if options.render_only else measure()
    write_all(figures)
    print(
        f"wrote {JSON_PATH.relative_to(ROOT)}, {SVG_PATH.relative_to(ROOT)}, "
        f"and the table in {PAGE_PATH.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
