"""`examples.request_cache`: one run per distinct call per request, on asyncio and Trio."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from examples.request_cache import RequestScopeMiddleware, request_cached, request_scope
from examples.services import Database, ServiceUnavailable, User, outage, stall
from examples.timeline import Timeline

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python


@pytest.fixture
def db() -> Database:
    return Database()


def cached_get_user(db: Database):  # a fresh cached function per test
    @request_cached
    async def get_user(user_id: int) -> User | None:
        return await db.get_user(user_id)

    return get_user


async def test_concurrent_calls_share_one_query(db: Database) -> None:
    get_user = cached_get_user(db)
    names: list[str] = []

    async def part() -> None:
        user = await get_user(1)
        names.append(user.name)

    with Timeline() as timeline:
        async with request_scope(), anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(part)
    assert names == ["Ada", "Ada", "Ada"]
    assert db.queries == ["db.get_user(1)"]
    assert timeline.total_ms == 100


async def test_later_calls_get_the_stored_result(db: Database) -> None:
    get_user = cached_get_user(db)
    async with request_scope():
        first = await get_user(1)
        with Timeline() as timeline:
            second = await get_user(user_id=1)  # same key as get_user(1)
    assert second is first
    assert db.queries == ["db.get_user(1)"]
    assert timeline.total_ms == 0


async def test_different_arguments_are_different_calls(db: Database) -> None:
    get_user = cached_get_user(db)
    async with request_scope():
        await get_user(1)
        await get_user(2)
        await get_user(1)
    assert db.queries == ["db.get_user(1)", "db.get_user(2)"]


async def test_different_functions_with_the_same_arguments_do_not_collide(
    db: Database,
) -> None:
    @request_cached
    async def get_post(post_id: int) -> dict:
        return await db.get_post(post_id)

    get_user = cached_get_user(db)
    async with request_scope():
        user, post = await get_user(1), await get_post(1)
    assert user.name == "Ada" and post["title"] == "Post 1"


async def test_cancelling_the_first_caller_does_not_cancel_the_others(db: Database) -> None:
    get_user = cached_get_user(db)
    results: dict[str, str] = {}

    async def impatient() -> None:
        with anyio.move_on_after(0.05):
            results["impatient"] = (await get_user(1)).name
        results.setdefault("impatient", "gave up")

    async def patient(name: str) -> None:
        await anyio.sleep(0.01)  # arrives after the impatient caller started the query
        results[name] = (await get_user(1)).name

    with Timeline() as timeline:
        async with request_scope(), anyio.create_task_group() as tg:
            tg.start_soon(impatient)
            tg.start_soon(patient, "b")
            tg.start_soon(patient, "c")
    assert results == {"impatient": "gave up", "b": "Ada", "c": "Ada"}
    assert db.queries == ["db.get_user(1)"]
    assert [span.outcome for span in timeline.spans] == ["ok"]
    assert timeline.total_ms == 100


async def test_a_call_nobody_waits_for_is_cancelled_and_runs_again_later(
    db: Database,
) -> None:
    get_user = cached_get_user(db)
    with Timeline() as timeline:
        async with request_scope():
            with anyio.move_on_after(0.03):
                await get_user(1)
            user = await get_user(1)
    assert user.name == "Ada"
    assert [span.outcome for span in timeline.spans] == ["cancelled", "ok"]
    assert timeline.total_ms == 130


async def test_a_failure_is_shared_with_waiters_and_not_kept(db: Database) -> None:
    get_user = cached_get_user(db)
    errors: list[str] = []

    async def part() -> None:
        try:
            await get_user(1)
        except ServiceUnavailable as exc:
            errors.append(str(exc))

    async with request_scope():
        with outage("db.get_user"):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(part)
        retried = await get_user(1)
    assert errors == ["db.get_user: 503 Service Unavailable"] * 3
    assert retried.name == "Ada"
    assert db.queries == ["db.get_user(1)", "db.get_user(1)"]


async def test_concurrent_requests_do_not_see_each_others_data(db: Database) -> None:
    @request_cached
    async def current_user() -> User | None:  # no arguments: keyed by the request alone
        return await db.get_user(user_ids.pop(0))

    user_ids = [1, 2]
    seen: list[str] = []

    async def request() -> None:
        async with request_scope():
            first = await current_user()
            again = await current_user()
        assert again is first
        seen.append(first.name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        tg.start_soon(request)
    assert sorted(seen) == ["Ada", "Grace"]
    assert len(db.queries) == 2


async def test_tasks_started_inside_the_request_share_its_store(db: Database) -> None:
    get_user = cached_get_user(db)
    async with request_scope():
        async with anyio.create_task_group() as tg:
            tg.start_soon(get_user, 1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(get_user, 1)
    assert db.queries == ["db.get_user(1)"]


async def test_a_dict_argument_raises_a_clear_type_error(db: Database) -> None:
    @request_cached
    async def find_users(filters: dict) -> list[User]:
        return []

    async with request_scope():
        with pytest.raises(TypeError) as caught:
            await find_users({"active": True})
    message = str(caught.value)
    assert "find_users()" in message
    assert "argument 'filters' is a dict" in message
    assert "tuple or a frozen dataclass" in message


async def test_a_plain_dataclass_is_unhashable_and_a_frozen_one_hits(db: Database) -> None:
    @dataclass
    class Query:
        user_id: int

    @dataclass(frozen=True)
    class FrozenQuery:
        user_id: int

    @request_cached
    async def find(query: object) -> User | None:
        return await db.get_user(query.user_id)

    async with request_scope():
        with pytest.raises(TypeError, match="argument 'query' is a Query"):
            await find(Query(1))
        await find(FrozenQuery(1))
        await find(FrozenQuery(1))
    assert db.queries == ["db.get_user(1)"]


async def test_keyword_arguments_collected_by_kwargs_are_a_key(db: Database) -> None:
    @request_cached
    async def search(**filters: int) -> int:
        return await db.count_orders(filters["user_id"])

    async with request_scope():
        await search(user_id=1, year=2026)
        await search(year=2026, user_id=1)
    assert db.queries == ["db.count_orders(1)"]


async def test_calling_outside_a_request_scope_raises(db: Database) -> None:
    get_user = cached_get_user(db)
    with pytest.raises(
        RuntimeError, match=r"get_user\(\) is request_cached and needs a request scope"
    ):
        await get_user(1)
    assert db.queries == []


async def test_the_store_ends_with_the_scope(db: Database) -> None:
    get_user = cached_get_user(db)
    async with request_scope():
        await get_user(1)
    async with request_scope():
        await get_user(1)
    assert db.queries == ["db.get_user(1)", "db.get_user(1)"]
    with pytest.raises(RuntimeError):
        await get_user(1)


async def test_scope_end_cancels_a_call_still_running(db: Database) -> None:
    get_user = cached_get_user(db)
    with Timeline() as timeline, stall("db.get_user"):
        with pytest.RaisesGroup(
            pytest.RaisesExc(RuntimeError, match=r"get_user\(1\) was cancelled: its request")
        ):
            async with anyio.create_task_group() as outer:
                async with request_scope():
                    # A task that outlives the request, started with its context.
                    outer.start_soon(get_user, 1)
                    await anyio.sleep(0.01)
    assert [span.outcome for span in timeline.spans] == ["cancelled"]
    assert timeline.total_ms == 10


async def test_an_error_in_the_scope_comes_out_unwrapped() -> None:
    with pytest.raises(ValueError, match="boom"):
        async with request_scope():
            raise ValueError("boom")


async def test_hits_and_misses_are_logged(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    get_user = cached_get_user(db)
    with caplog.at_level(logging.DEBUG, logger="examples.request_cache"):
        async with request_scope():
            await get_user(123)
            await get_user(123)
            await get_user(456)
    assert [r.getMessage() for r in caplog.records] == [
        "miss get_user(123)",
        "hit get_user(123)",
        "miss get_user(456)",
    ]


def test_a_sync_function_is_refused() -> None:
    with pytest.raises(TypeError, match="needs an async def function"):

        @request_cached
        def get_user(user_id: int) -> None: ...


async def test_middleware_gives_each_http_request_its_own_scope(db: Database) -> None:
    get_user = cached_get_user(db)

    async def page(request: Request) -> JSONResponse:
        user_id = int(request.path_params["user_id"])
        async with anyio.create_task_group() as tg:  # three parts of the page
            for _ in range(3):
                tg.start_soon(get_user, user_id)
        return JSONResponse({"name": (await get_user(user_id)).name})

    app = Starlette(
        routes=[Route("/users/{user_id:int}", page)],
        middleware=[Middleware(RequestScopeMiddleware)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        names: dict[int, str] = {}

        async def get(user_id: int) -> None:
            names[user_id] = (await client.get(f"/users/{user_id}")).json()["name"]

        async with anyio.create_task_group() as tg:
            tg.start_soon(get, 1)
            tg.start_soon(get, 2)
        await get(1)
    assert names == {1: "Ada", 2: "Grace"}
    assert sorted(db.queries) == ["db.get_user(1)", "db.get_user(1)", "db.get_user(2)"]


async def test_a_task_that_outlives_its_request_gets_a_clear_error() -> None:
    @request_cached
    async def lookup(user_id: int) -> int:
        return user_id

    errors: list[str] = []

    async def later() -> None:
        await anyio.sleep(1)  # the request has ended by now
        try:
            await lookup(1)
        except RuntimeError as exc:
            errors.append(str(exc))

    async with anyio.create_task_group() as outer:
        async with request_scope():
            outer.start_soon(later)  # started during the request, runs after it
    assert len(errors) == 1
    assert "the request this task started in has ended" in errors[0]
