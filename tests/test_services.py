"""The simulated backend: latencies from the one table, realistic failures, an observable store."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from examples import services
from examples.services import (
    LATENCY_MS,
    Database,
    InterfaceError,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
    outage,
    stall,
)
from examples.timeline import Timeline
from tests.harness import DOCS

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python


def calls(db: Database) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call per service, with arguments that succeed."""
    return {
        "auth": lambda: services.auth("session-ada"),
        "config": services.fetch_config,
        "settings": services.fetch_settings,
        "user_data": lambda: services.fetch_user_data(1),
        "validate_profile": lambda: services.validate_profile({"name": "Ada"}),
        "user": lambda: services.fetch_user(1),
        "posts": lambda: services.fetch_posts(1),
        "comments": lambda: services.fetch_comments(1),
        "analytics": lambda: services.fetch_analytics(1),
        "notifications": lambda: services.fetch_notifications(1),
        "item": lambda: services.fetch_item(7),
        "validate_title": lambda: services.validate_title("Hello"),
        "validate_content": lambda: services.validate_content("Long enough content"),
        "validate_image": lambda: services.validate_image("https://img.example/a.png"),
        "weather": lambda: _get("/weather"),
        "news": lambda: _get("/news"),
        "stocks": lambda: _get("/stocks"),
        "header": services.fetch_header,
        "sidebar": services.fetch_sidebar,
        "content": services.fetch_content,
        "recommendations": lambda: services.fetch_recommendations(services.USERS[1]),
        "widget": lambda: services.fetch_widget("stats"),
        "post_file": lambda: services.read_post_file("hello-world"),
        "db.get_user": lambda: db.get_user(1),
        "db.get_post": lambda: db.get_post(1),
        "db.get_profile": lambda: db.get_profile(1),
        "db.get_orders": lambda: db.get_orders(1),
        "db.get_notifications": lambda: db.get_notifications(1),
        "db.get_preferences": lambda: db.get_preferences(1),
        "db.count_orders": lambda: db.count_orders(1),
        "db.count_reviews": lambda: db.count_reviews(1),
        "db.count_visits": lambda: db.count_visits(1),
        "db.update_profile": lambda: db.update_profile(1, {"name": "Ada"}),
        "db.create_post": lambda: db.create_post({"title": "Hi"}),
        "db.update_post": lambda: db.update_post(7, {"title": "Hi"}),
    }


async def _get(path: str) -> Any:
    async with services.api_client() as client:
        response = await client.get(path)
        response.raise_for_status()
        return response.json()


def test_every_service_has_a_call_here() -> None:
    assert set(calls(Database())) == set(LATENCY_MS)


@pytest.mark.parametrize("service", sorted(LATENCY_MS))
async def test_each_call_takes_its_latency_from_the_table(service: str) -> None:
    with Timeline() as timeline:
        await calls(Database())[service]()
    assert [span.service for span in timeline.spans] == [service]
    assert timeline.total_ms == LATENCY_MS[service]


@pytest.mark.parametrize("service", sorted(LATENCY_MS))
async def test_each_call_can_fail_after_its_latency(service: str) -> None:
    with Timeline() as timeline, outage(service):
        with pytest.raises((ServiceUnavailable, Exception)) as raised:
            await calls(Database())[service]()
    if service in {"weather", "news", "stocks"}:
        assert "503" in str(raised.value)  # the HTTP API answers with a 503 status
    else:
        assert raised.type is ServiceUnavailable
    assert timeline.total_ms == LATENCY_MS[service]


async def test_stall_hangs_until_cancelled() -> None:
    with Timeline() as timeline, stall("config"):
        with anyio.move_on_after(1):
            await services.fetch_config()
    assert timeline.total_ms == 1000
    assert timeline.spans[0].outcome == "cancelled"


async def test_faults_end_with_their_block() -> None:
    with outage("config"):
        pass
    assert await services.fetch_config() == {"theme": "dark", "beta": False}


def test_unknown_service_names_are_rejected() -> None:
    with pytest.raises(KeyError, match="unknown service"), outage("confgi"):
        pass


async def test_auth_rejects_a_token_that_is_not_signed_in() -> None:
    session = await services.auth("session-grace")
    assert session.user_id == 2
    for token in (None, "", "session-nobody"):
        with pytest.raises(Unauthorized):
            await services.auth(token)


async def test_validators_reject_bad_input() -> None:
    for call in (
        services.validate_profile({"name": "  "}),
        services.validate_title(""),
        services.validate_content("short"),
        services.validate_image("http://img.example/a.png"),
    ):
        with pytest.raises(ValidationError):
            await call


async def test_writes_are_recorded_and_queries_listed() -> None:
    database = Database()
    await database.update_profile(1, {"name": "Ada L."})
    await database.get_user(1)
    assert [(w.table, w.key, dict(w.values)) for w in database.writes] == [
        ("profiles", 1, {"name": "Ada L."})
    ]
    assert database.queries == ["db.update_profile(1)", "db.get_user(1)"]


async def test_a_connection_runs_one_query_at_a_time() -> None:
    database = Database()
    errors: list[str] = []
    async with database.connection() as conn:

        async def query(call: Callable[[], Awaitable[Any]]) -> None:
            try:
                await call()
            except InterfaceError as exc:
                errors.append(str(exc))

        async with anyio.create_task_group() as tg:
            tg.start_soon(query, lambda: conn.get_orders(1))
            tg.start_soon(query, lambda: conn.get_profile(1))
    assert len(errors) == 1
    assert re.search(r"another operation \(db\.get_\w+\(1\)\) is in progress", errors[0])


@pytest.mark.parametrize(("pool_size", "total_ms"), [(1, 300), (2, 200), (3, 100)])
async def test_the_pool_size_caps_concurrency(pool_size: int, total_ms: int) -> None:
    database = Database(pool_size=pool_size)
    with Timeline() as timeline:
        async with anyio.create_task_group() as tg:
            for user_id in (1, 2, 3):
                tg.start_soon(database.get_user, user_id)
    assert timeline.total_ms == total_ms


async def test_http_api_reports_unknown_paths() -> None:
    async with services.api_client() as client:
        response = await client.get("/nothing")
    assert response.status_code == 404


def test_home_page_latency_table_matches_services() -> None:
    """The table readers see is the table the examples use."""
    text = (DOCS / "index.md").read_text()
    rows = dict(re.findall(r"^\| `([\w.]+)` \| (\d+) ms \|$", text, flags=re.M))
    assert {name: int(ms) for name, ms in rows.items()} == LATENCY_MS
