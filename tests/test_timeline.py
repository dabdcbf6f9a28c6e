"""The timeline: spans on the loop's clock, a deterministic chart, the critical path."""

from __future__ import annotations

import re

import anyio
import pytest

from examples import timeline as timeline_module
from examples.services import (
    auth,
    circuit_open,
    fetch_config,
    fetch_user,
    fetch_user_data,
    outage,
    stall,
)
from examples.timeline import BAR_WIDTH, Timeline

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python


async def handler_in_parallel() -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(fetch_config)
        session = await auth("session-ada")
        await fetch_user_data(session.user_id)


async def test_chart_lists_each_call_with_its_start_and_end() -> None:
    with Timeline() as timeline:
        await handler_in_parallel()
    lines = str(timeline).splitlines()
    assert lines[-1] == "total 150 ms"
    rows = [re.match(r"(\S+) .* (\d+) → +(\d+) ms$", line).groups() for line in lines[:-1]]
    assert rows == [
        ("auth", "0", "50"),
        ("config", "0", "50"),
        ("user_data(1)", "50", "150"),
    ]


async def test_bars_are_proportional_and_aligned() -> None:
    with Timeline() as timeline:
        await handler_in_parallel()
    lines = str(timeline).splitlines()[:-1]
    bars = [line[len("user_data(1)  ") :][:BAR_WIDTH] for line in lines]
    assert bars[0] == "█" * 10 + " " * 20  # 0..50 of 150 ms
    assert bars[2] == " " * 10 + "█" * 20  # 50..150 of 150 ms


async def test_calls_that_take_no_time_still_get_a_cell() -> None:
    # Every call ends at 0 ms: the chart has no scale, and each call still shows.
    with Timeline() as timeline:
        with pytest.raises(ExceptionGroup), circuit_open("config"), stall("auth"):
            async with anyio.create_task_group() as tg:
                tg.start_soon(auth, "session-ada")  # cancelled when config fails
                tg.start_soon(fetch_config)
    *rows, total = str(timeline).splitlines()
    assert total == "total 0 ms"
    bars = {row.split()[0]: row[len("config  ") :][:BAR_WIDTH] for row in rows}
    assert bars == {
        "auth": "░" + " " * (BAR_WIDTH - 1),
        "config": "█" + " " * (BAR_WIDTH - 1),
    }


async def test_chart_is_the_same_on_every_backend_and_run() -> None:
    charts = set()
    for _ in range(3):
        with Timeline() as timeline:
            async with anyio.create_task_group() as tg:
                for user_id in (3, 1, 2):
                    tg.start_soon(fetch_user, user_id)
        charts.add(str(timeline))
    assert len(charts) == 1
    assert [line.split()[0] for line in charts.pop().splitlines()[:-1]] == [
        "user(1)",
        "user(2)",
        "user(3)",
    ]


async def test_failed_and_cancelled_calls_say_so() -> None:
    with Timeline() as timeline:
        with pytest.raises(ExceptionGroup), outage("config"), stall("auth"):
            async with anyio.create_task_group() as tg:
                tg.start_soon(auth, "session-ada")
                tg.start_soon(fetch_config)
    lines = str(timeline).splitlines()
    assert lines[0].endswith("cancelled") and "░" in lines[0]
    assert lines[1].endswith("failed: ServiceUnavailable")
    assert lines[-1] == "total 50 ms"


async def test_critical_path_finds_a_waterfall() -> None:
    with Timeline() as waterfall:
        session = await auth("session-ada")
        await fetch_config()
        await fetch_user_data(session.user_id)
    with Timeline() as parallel:
        await handler_in_parallel()
    assert (waterfall.total_ms, waterfall.critical_path_ms()) == (200, 150)
    assert (parallel.total_ms, parallel.critical_path_ms()) == (150, 150)


async def test_calls_in_child_tasks_are_recorded_and_counted() -> None:
    with Timeline() as timeline:
        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch_user, 1)
            tg.start_soon(fetch_user, 1)
    assert timeline.count("user") == 2
    assert timeline_module.opened == [timeline]


async def test_no_timeline_no_recording() -> None:
    assert timeline_module.current_timeline() is None
    await fetch_config()  # nothing to record on, and no error
    assert timeline_module.opened == []
