"""`examples.request_cache`: one run per distinct call per request, on asyncio and Trio."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from contextvars import ContextVar
from dataclasses import dataclass
from typing import NamedTuple

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from examples.request_cache import (
    CachedCallCycleError,
    RequestCached,
    RequestScopeMiddleware,
    _current_store,
    request_cached,
    request_scope,
)
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


class Repository:
    """A method that is request_cached: the instance is part of the key."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @request_cached
    async def user(self, user_id: int) -> User | None:
        return await self.db.get_user(user_id)


async def test_a_cached_method_is_bound_and_keyed_by_its_instance(db: Database) -> None:
    first, second = Repository(db), Repository(db)
    async with request_scope():
        async with anyio.create_task_group() as tg:
            for repo in (first, first, second):
                tg.start_soon(repo.user, 1)
        assert db.queries == ["db.get_user(1)", "db.get_user(1)"]  # one per instance
        assert (await first.user(1)) is (await first.user(1))
        Repository.user.invalidate(first, 1)
        await first.user(1)
    assert db.queries == ["db.get_user(1)"] * 3
    assert Repository.__dict__["user"] is Repository.user  # looked up on the class: itself


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


# --- Context, cycles, keys, invalidation, memory, exceptions ------------------

request_tag: ContextVar[str] = ContextVar("request_tag", default="none")


async def test_a_cached_call_reads_the_context_of_its_request_scope() -> None:
    """Not the context of whichever part happened to call first: the same on
    asyncio and Trio."""

    @request_cached
    async def tag() -> str:
        await anyio.sleep(0.01)
        return request_tag.get()

    seen: list[str] = []

    async def part(own_tag: str) -> None:
        request_tag.set(own_tag)  # a part's own value, set after the scope opened
        seen.append(await tag())

    request_tag.set("request")
    async with request_scope(), anyio.create_task_group() as tg:
        tg.start_soon(part, "first part")
        tg.start_soon(part, "second part")
    assert seen == ["request", "request"]


async def test_a_cycle_of_cached_calls_raises_an_error_that_names_it() -> None:
    @request_cached
    async def a(n: int) -> int:
        return await b(n)

    @request_cached
    async def b(n: int) -> int:
        await anyio.sleep(0.01)
        return await a(n)

    with anyio.fail_after(5):  # a cycle left undetected would wait forever
        async with request_scope():
            with pytest.raises(CachedCallCycleError) as caught:
                await a(1)
    assert str(caught.value) == "cycle of cached calls: a(1) -> b(1) -> a(1)"


async def test_a_cycle_across_tasks_is_found_too() -> None:
    """b(1) is started by its own caller; a(1) then waits for it, and b(1) for a(1)."""

    @request_cached
    async def a(n: int) -> int:
        await anyio.sleep(0.02)
        return await b(n)

    @request_cached
    async def b(n: int) -> int:
        await anyio.sleep(0.05)
        return await a(n)

    errors: list[str] = []

    async def call(function: RequestCached[[int], int]) -> None:
        try:
            await function(1)
        except CachedCallCycleError as exc:
            errors.append(str(exc))

    with anyio.fail_after(5):
        async with request_scope(), anyio.create_task_group() as tg:
            tg.start_soon(call, b)
            tg.start_soon(call, a)
    assert errors == ["cycle of cached calls: a(1) -> b(1) -> a(1)"] * 2


async def test_a_call_of_itself_is_a_cycle() -> None:
    @request_cached
    async def countdown(n: int) -> int:
        return await countdown(n)

    async with request_scope():
        with pytest.raises(CachedCallCycleError, match=r"countdown\(3\) -> countdown\(3\)$"):
            await countdown(3)


async def test_equal_values_of_different_types_are_different_keys() -> None:
    class Point(NamedTuple):
        x: int
        y: int

    class Size(NamedTuple):
        x: int
        y: int

    @request_cached
    async def describe(value: object) -> str:
        return repr(value)

    async with request_scope():
        results = [
            await describe(value)
            for value in (1, 1.0, True, Point(1, 2), Size(1, 2), (1, 2), (1.0, 2))
        ]
    assert results == [
        "1",
        "1.0",
        "True",
        "Point(x=1, y=2)",
        "Size(x=1, y=2)",
        "(1, 2)",
        "(1.0, 2)",
    ]


async def test_equal_field_values_of_different_types_are_different_keys() -> None:
    @dataclass(frozen=True)
    class Key:
        value: object

    @dataclass(frozen=True)
    class Outer:
        inner: Key

    runs: list[object] = []

    @request_cached
    async def describe(value: object) -> object:
        runs.append(value)
        return value

    values = [Key(1), Key(True), Key(1.0), Outer(Key(1)), Outer(Key(True)), Key((True, 2))]
    async with request_scope():
        results = [await describe(value) for value in [*values, Key(1), Key((1, 2))]]
    assert runs == [*values, Key((1, 2))]  # the second Key(1) was a hit
    assert [type(result.value) for result in results[:3]] == [int, bool, float]


async def test_invalidate_forgets_one_entry_after_a_write(db: Database) -> None:
    get_user = cached_get_user(db)
    async with request_scope():
        await get_user(1)
        await get_user(2)
        get_user.invalidate(1)  # user 1 was just written
        await get_user(user_id=1)
        await get_user(2)
    assert db.queries == ["db.get_user(1)", "db.get_user(2)", "db.get_user(1)"]


async def test_invalidate_all_forgets_every_entry_of_that_function(db: Database) -> None:
    get_user = cached_get_user(db)

    @request_cached
    async def get_post(post_id: int) -> dict[str, object]:
        return await db.get_post(post_id)

    async with request_scope():
        await get_user(1), await get_user(2), await get_post(7)
        get_user.invalidate_all()
        await get_user(1), await get_user(2), await get_post(7)
    assert db.queries == [
        "db.get_user(1)",
        "db.get_user(2)",
        "db.get_post(7)",
        "db.get_user(1)",
        "db.get_user(2)",
    ]


async def test_invalidating_a_call_in_flight_lets_its_waiters_finish(db: Database) -> None:
    get_user = cached_get_user(db)
    names: list[str] = []

    async def part() -> None:
        names.append((await get_user(1)).name)

    async with request_scope(), anyio.create_task_group() as tg:
        tg.start_soon(part)
        await anyio.sleep(0.01)
        get_user.invalidate(1)
        tg.start_soon(part)  # after the write: a new query
    assert names == ["Ada", "Ada"]
    assert db.queries == ["db.get_user(1)", "db.get_user(1)"]


async def test_a_caller_after_invalidate_waits_for_the_invalidated_run_to_end() -> None:
    """At most one run of a key at a time, even right after an invalidate()."""
    running: list[int] = []
    started_at: list[int] = []

    @request_cached
    async def read(user_id: int) -> int:
        running.append(user_id)
        assert len(running) == 1, "two runs of one key at once"
        started_at.append(round(anyio.current_time() * 1000))
        try:
            await anyio.sleep(0.1)
            return len(started_at)
        finally:
            running.remove(user_id)

    results: list[int] = []

    async def part() -> None:
        results.append(await read(1))

    begin = anyio.current_time()
    async with request_scope(), anyio.create_task_group() as tg:
        tg.start_soon(part)
        await anyio.sleep(0.01)
        read.invalidate(1)
        tg.start_soon(part)
        await anyio.sleep(0.01)
        read.invalidate_all()  # the second run has not started yet
        tg.start_soon(part)
    assert results == [1, 2, 3]
    assert [ms - round(begin * 1000) for ms in started_at] == [0, 100, 200]


async def test_invalidate_outside_a_scope_raises(db: Database) -> None:
    get_user = cached_get_user(db)
    with pytest.raises(RuntimeError, match="needs a request scope"):
        get_user.invalidate(1)


async def test_a_finished_call_keeps_only_its_value(db: Database) -> None:
    """No Event, no CancelScope, no call record stays alive once the call is done."""
    get_user = cached_get_user(db)
    records: list[weakref.ref[object]] = []
    async with request_scope():
        store = _current_store.get()
        assert store is not None
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(get_user, 1)
            await anyio.sleep(0.01)  # the query is running
            [call] = store.entries.values()
            records += [weakref.ref(call), weakref.ref(call.done), weakref.ref(call.cancel_scope)]
            del call
        gc.collect()
        assert [record() for record in records] == [None, None, None]
        [entry] = store.entries.values()
        assert entry.value.name == "Ada"
        assert not hasattr(entry, "__dict__")  # a slotted record: the value alone


async def test_each_waiter_gets_its_own_copy_of_the_error_chained_to_it() -> None:
    @request_cached
    async def fail() -> None:
        await anyio.sleep(0.01)
        raise ServiceUnavailable("db.get_user: 503 Service Unavailable")

    errors: list[BaseException] = []

    async def part() -> None:
        try:
            await fail()
        except ServiceUnavailable as exc:
            errors.append(exc)

    async with request_scope(), anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(part)
    first, second, third = errors
    assert len({id(first), id(second), id(third)}) == 3
    assert first.__cause__ is second.__cause__ is third.__cause__
    assert type(first.__cause__) is ServiceUnavailable
    assert {str(error) for error in errors} == {"db.get_user: 503 Service Unavailable"}


async def test_a_note_one_waiter_adds_stays_on_its_own_copy() -> None:
    @request_cached
    async def fail() -> None:
        await anyio.sleep(0.01)
        error = ServiceUnavailable("db.get_user: 503 Service Unavailable")
        error.add_note("from the cached call")
        raise error

    notes: list[list[str]] = []

    async def part(name: str) -> None:
        try:
            await fail()
        except ServiceUnavailable as exc:
            exc.add_note(f"in {name}")
            notes.append(exc.__notes__)

    async with request_scope(), anyio.create_task_group() as tg:
        for name in ("header", "sidebar", "feed"):
            tg.start_soon(part, name)
    assert sorted(notes) == [
        ["from the cached call", "in feed"],
        ["from the cached call", "in header"],
        ["from the cached call", "in sidebar"],
    ]


async def test_an_error_that_does_not_copy_is_shared_as_is() -> None:
    class NeedsTwo(Exception):
        def __init__(self, service: str, status: int) -> None:
            super().__init__(f"{service}: {status}")

    @request_cached
    async def fail() -> None:
        raise NeedsTwo("db", 503)

    errors: list[BaseException] = []

    async def part() -> None:
        try:
            await fail()
        except NeedsTwo as exc:
            errors.append(exc)

    async with request_scope(), anyio.create_task_group() as tg:
        tg.start_soon(part)
        tg.start_soon(part)
    assert errors[0] is errors[1]
    assert str(errors[0]) == "db: 503"


async def test_a_base_exception_is_named_to_the_waiters_and_ends_the_scope() -> None:
    class Stop(BaseException):
        pass

    @request_cached
    async def stop() -> None:
        await anyio.sleep(0.01)
        raise Stop

    errors: list[str] = []

    async def outliving_caller() -> None:
        try:
            await stop()
        except RuntimeError as exc:
            errors.append(f"{exc} (cause: {type(exc.__cause__.__cause__).__name__})")

    with pytest.RaisesGroup(Stop, allow_unwrapped=True, flatten_subgroups=True):
        async with anyio.create_task_group() as outer:
            async with request_scope():
                outer.start_soon(outliving_caller)
                await anyio.sleep(1)
    assert errors == ["stop() was stopped by Stop (cause: Stop)"]


async def test_a_long_lived_request_opens_a_scope_per_message(db: Database) -> None:
    """What the 2.5 page advises for a stream: each message sees fresh data."""
    get_user = cached_get_user(db)
    sent: list[str] = []
    async with request_scope():  # the stream's own request scope, never ending soon
        for _ in range(3):
            async with request_scope():
                user, again = await get_user(1), await get_user(1)
                sent.append(f"{user.name} {again is user}")
    assert sent == ["Ada True"] * 3
    assert db.queries == ["db.get_user(1)"] * 3


async def test_a_request_cancelled_as_a_whole_ends_its_callers_as_cancelled(
    db: Database,
) -> None:
    """Not with the "was cancelled" RuntimeError meant for callers left waiting."""
    get_user = cached_get_user(db)
    with anyio.move_on_after(0.05) as request_deadline:
        async with request_scope(), anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(get_user, 1)
    assert request_deadline.cancelled_caught


async def test_a_new_caller_waits_for_an_abandoned_run_to_end_before_rerunning() -> None:
    """At most one run of a key at a time, even while a cancelled run cleans up."""
    running: list[int] = []
    started_at: list[int] = []

    @request_cached
    async def slow_to_stop(user_id: int) -> int:
        running.append(user_id)
        assert len(running) == 1, "two runs of one key at once"
        started_at.append(round(anyio.current_time() * 1000))
        try:
            await anyio.sleep(0.1)
            return user_id
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)  # closing a connection, say
            running.remove(user_id)

    async def impatient() -> None:
        with anyio.move_on_after(0.01):
            await slow_to_stop(1)

    async def late() -> int:
        await anyio.sleep(0.02)  # the first run is cancelled, still cleaning up
        return await slow_to_stop(1)

    begin = anyio.current_time()
    async with request_scope(), anyio.create_task_group() as tg:
        tg.start_soon(impatient)
        assert await late() == 1
    assert [ms - round(begin * 1000) for ms in started_at] == [0, 60]


async def test_a_cancellation_not_aimed_at_the_call_is_its_failure(
    anyio_backend_name: str,
) -> None:
    """A call that awaited a future someone else cancelled fails alone: the
    CancelledError it let out does not cancel the whole request scope."""
    if anyio_backend_name != "asyncio":
        pytest.skip("only an asyncio future can be cancelled from outside its awaiter")
    shared: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @request_cached
    async def waits_for_shared() -> int:
        return await shared

    async def cancel_shared() -> None:
        await anyio.sleep(0.01)
        shared.cancel()

    async with request_scope(), anyio.create_task_group() as tg:
        tg.start_soon(cancel_shared)
        with pytest.raises(RuntimeError, match="raised CancelledError without being cancelled"):
            await waits_for_shared()
        await anyio.sleep(0.01)  # the request goes on
    assert not tg.cancel_scope.cancel_called
