"""Record when each simulated call starts and ends, and draw it as text.

Every call in `examples.services` records a span on the event loop's clock
(`anyio.current_time()`), so the same code reads virtual time under a test
clock and real time otherwise. Open a `Timeline` around the code you want to
measure and print it:

    with Timeline() as timeline:
        await handler()
    print(timeline)

Tasks copy the current context when they are created, so calls made in child
tasks land on the timeline of the code that spawned them.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field

import anyio

# AnyIO loads its backend for the running event loop on first use. Loaded
# here, at import, its import time is not added to the span of the first
# call that a plain-asyncio example times with the loop clock.
import anyio._backends._asyncio

__all__ = ["Span", "Timeline", "current_timeline"]

BAR_WIDTH = 30
BAR = "█"
CANCELLED_BAR = "░"

_current: ContextVar[Timeline | None] = ContextVar("timeline", default=None)

# Every timeline opened in this process, in order. The test harness reads it
# to check printed totals against the calls that were actually made.
opened: list[Timeline] = []


def current_timeline() -> Timeline | None:
    """The timeline that calls made here are recorded on, if any."""
    return _current.get()


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass
class Span:
    """One call: what it was, when it started and ended, how it ended."""

    label: str
    service: str
    start: float
    end: float | None = None
    outcome: str = "running"  # "ok", "failed: <error>", "cancelled"
    needs: tuple[str, ...] = field(default=())

    @property
    def start_ms(self) -> int:
        return _ms(self.start)

    @property
    def end_ms(self) -> int:
        assert self.end is not None, f"{self.label} has not ended"
        return _ms(self.end)


class Timeline:
    """Spans of every simulated call made while the timeline is open."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._origin: float | None = None
        self._closed_at: float | None = None
        self._token: Token[Timeline | None] | None = None

    def __enter__(self) -> Timeline:
        self._origin = anyio.current_time()
        self._token = _current.set(self)
        opened.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._token is not None, "a Timeline is closed only after it was opened"
        self._closed_at = self._now()
        _current.reset(self._token)
        self._token = None

    def _now(self) -> float:
        assert self._origin is not None, "open the timeline with `with Timeline()`"
        return anyio.current_time() - self._origin

    def begin(self, label: str, service: str, needs: tuple[str, ...] = ()) -> Span:
        span = Span(label=label, service=service, start=self._now(), needs=needs)
        self.spans.append(span)
        return span

    def finish(self, span: Span, outcome: str) -> None:
        span.end = self._now()
        span.outcome = outcome

    @property
    def total_ms(self) -> int:
        """Milliseconds from opening the timeline to closing it (or to now)."""
        end = self._closed_at if self._closed_at is not None else self._now()
        return _ms(end)

    def count(self, service: str) -> int:
        """How many calls were made to one service."""
        return sum(1 for span in self.spans if span.service == service)

    def critical_path_ms(self) -> int:
        """The shortest total the recorded calls allow.

        Each call can start only when the calls it needs (see
        `services.NEEDS`) have ended. Calls that need nothing could all start
        at 0. A total above this number means something waited that did not
        have to: a waterfall. Calls that ended early by failing or being
        cancelled count for as long as they ran.
        """
        earliest_end: dict[str, int] = {}
        finished_by_service: dict[str, int] = {}
        for span in sorted(self.spans, key=lambda s: s.start):
            if span.end is None:
                continue
            ready = max((finished_by_service.get(n, 0) for n in span.needs), default=0)
            end = ready + (span.end_ms - span.start_ms)
            earliest_end[span.label] = max(earliest_end.get(span.label, 0), end)
            finished_by_service[span.service] = max(finished_by_service.get(span.service, 0), end)
        return max(earliest_end.values(), default=0)

    def __str__(self) -> str:
        total = self.total_ms
        label_width = max((len(span.label) for span in self.spans), default=0)
        lines = []
        # Sorted by time, then name: Trio and asyncio start ready tasks in
        # different orders, and the chart must not depend on it.
        for span in sorted(self.spans, key=lambda s: (s.start_ms, _end_or(s, total), s.label)):
            end = _end_or(span, total)
            bar = _bar(span.start_ms, end, total, span.outcome)
            times = f"{span.start_ms:>4} → {end:>4} ms"
            line = f"{span.label:<{label_width}}  {bar}  {times}"
            if span.outcome != "ok":
                line += f"  {span.outcome}"
            lines.append(line)
        lines.append(f"total {total} ms")
        return "\n".join(lines)


def _end_or(span: Span, default: int) -> int:
    return span.end_ms if span.end is not None else default


def _bar(start_ms: int, end_ms: int, total_ms: int, outcome: str) -> str:
    """A fixed-width bar; a call that ran at all gets at least one cell."""
    fill = CANCELLED_BAR if outcome == "cancelled" else BAR
    if total_ms <= 0:
        # Every call began and ended at 0 ms: each one is its first cell.
        return fill + " " * (BAR_WIDTH - 1)
    first = min(BAR_WIDTH - 1, start_ms * BAR_WIDTH // total_ms)
    last = max(first + 1, round(end_ms * BAR_WIDTH / total_ms))
    return " " * first + fill * (last - first) + " " * (BAR_WIDTH - last)
