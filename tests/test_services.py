"""The simulated backend: latencies from the one table, realistic failures, an observable store."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import looptime
import pytest

from examples import services
from examples.services import (
    LATENCY_MS,
    Database,
    InterfaceError,
    ServiceUnavailable,
    Unauthorized,
    ValidationError,
    circuit_open,
    outage,
    stall,
)
from examples.timeline import Timeline
from tests.harness import DOCS

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python


# A value that succeeds for each parameter name the services use. A service
# with a parameter not listed here fails test_every_service_has_a_call_here,
# which says what to add.
SAMPLE_ARGUMENTS: dict[str, object] = {
    "token": "session-ada",
    "user_id": 1,
    "item_id": 7,
    "post_id": 1,
    "user": services.USERS[1],
    "form": {"name": "Ada"},
    "values": {"name": "Ada"},
    "title": "Hello",
    "content": "Long enough content",
    "url": "https://img.example/a.png",
    "name": "stats",
    "slug": "hello-world",
    "action": "profile updated",
    "event": "profile_updated",
    "subject": "Your profile was updated",
    "quote": services.Quote("acme", 7, 1897),
    "product_id": 42,
    "price_cents": 19900,
    "replica": "a",
    "key": "price",
}
# Async functions of examples.services that are plumbing, not a service.
NOT_SERVICES = {"simulate", "external_api_app", "_query", "connection"}


def _public_async(owner: object) -> dict[str, Callable[..., Awaitable[Any]]]:
    return {
        name: function
        for name, function in inspect.getmembers(owner, inspect.iscoroutinefunction)
        if not name.startswith("__") and name not in NOT_SERVICES
    }


def _sample_call(
    name: str, function: Callable[..., Awaitable[Any]]
) -> Callable[[], Awaitable[Any]]:
    parameters = [p for p in inspect.signature(function).parameters if p != "self"]
    missing = [p for p in parameters if p not in SAMPLE_ARGUMENTS]
    assert not missing, (
        f"examples/services.py: {name}() takes {missing}, which tests/test_services.py's "
        "SAMPLE_ARGUMENTS has no value for; add one that succeeds"
    )
    return lambda: function(*(SAMPLE_ARGUMENTS[p] for p in parameters))


def calls(db: Database) -> dict[str, Callable[[], Awaitable[Any]]]:
    """One call per async function and Database method of examples.services, and per
    HTTP route, with arguments that succeed; found in the module, not listed here."""
    found = {name: _sample_call(name, f) for name, f in _public_async(services).items()}
    for name, method in _public_async(db).items():
        found[f"db.{name}"] = _sample_call(f"Database.{name}", method)
    for service in services.HTTP_API_SERVICES:
        found[f"GET /{service}"] = lambda service=service: _get(f"/{service}")
    return found


def service_of(call: Callable[[], Awaitable[Any]]) -> str:
    """The service a call hits, read from the span it records.

    On a virtual clock (looptime), as the tests below run: on the real one
    each worker of each run would wait out every service's latency here.
    """

    async def run() -> str:
        with Timeline() as timeline:
            await call()
        (span,) = timeline.spans
        return span.service

    return anyio.run(run, backend_options={"loop_factory": looptime.new_event_loop})


async def _get(path: str) -> Any:
    async with services.api_client() as client:
        response = await client.get(path)
        response.raise_for_status()
        return response.json()


# The name in calls() of the call that reaches each service (a Database is
# bound to the event loop that first used it: each test makes its own).
CALL_OF_SERVICE = {service_of(call): name for name, call in calls(Database()).items()}


def test_every_service_has_a_call_here() -> None:
    """Each service in the latency table is reached by a function of the module, and back."""
    assert sorted(CALL_OF_SERVICE) == sorted(LATENCY_MS), (
        "examples/services.py: the latency table and the module's calls differ; every "
        "service in LATENCY_MS needs a function (or Database method) that calls it"
    )


@pytest.mark.parametrize("service", sorted(LATENCY_MS))
async def test_each_call_takes_its_latency_from_the_table(service: str) -> None:
    with Timeline() as timeline:
        await calls(Database())[CALL_OF_SERVICE[service]]()
    assert [span.service for span in timeline.spans] == [service]
    assert timeline.total_ms == LATENCY_MS[service]


@pytest.mark.parametrize("service", sorted(LATENCY_MS))
async def test_each_call_can_fail_after_its_latency(service: str) -> None:
    with Timeline() as timeline, outage(service):
        with pytest.raises((ServiceUnavailable, Exception)) as raised:
            await calls(Database())[CALL_OF_SERVICE[service]]()
    if service in services.HTTP_API_SERVICES:
        assert "503" in str(raised.value)  # the HTTP API answers with a 503 status
    else:
        assert raised.type is ServiceUnavailable
    assert timeline.total_ms == LATENCY_MS[service]


@pytest.mark.parametrize("service", sorted(set(LATENCY_MS) - set(services.HTTP_API_SERVICES)))
async def test_each_call_can_fail_at_once_through_an_open_circuit(service: str) -> None:
    with Timeline() as timeline, circuit_open(service), stall(service):
        with pytest.raises(ServiceUnavailable, match="circuit open"):
            await calls(Database())[CALL_OF_SERVICE[service]]()
    assert timeline.total_ms == 0
    assert [span.outcome for span in timeline.spans] == ["failed: ServiceUnavailable"]


def test_the_http_apis_services_cannot_have_an_open_circuit() -> None:
    # Their calls are requests: the app would answer, which no breaker does.
    for service in services.HTTP_API_SERVICES:
        with pytest.raises(ValueError, match="use outage"):
            circuit_open("config", service)


async def test_calls_through_an_open_circuit_fail_without_a_checkpoint() -> None:
    # Two calls started together fail in the same step, whatever the clock:
    # neither ever reaches the event loop.
    with circuit_open("config"):
        coroutine = services.fetch_config()
        with pytest.raises(ServiceUnavailable):
            coroutine.send(None)


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


@pytest.mark.parametrize("fault", [outage, circuit_open, stall])
def test_unknown_service_names_are_rejected(fault: Callable[..., Any]) -> None:
    with pytest.raises(KeyError, match="unknown service"), fault("confgi"):
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


async def test_a_call_needs_its_services_entry_unless_it_names_its_own() -> None:
    """`NEEDS` holds what a service waits for; a call whose needs depend on its
    arguments (a quote's save needs that supplier's quote) names them itself,
    through a Database and through a Connection alike."""
    database = Database()
    with Timeline() as timeline:
        await database.update_profile(1, {"name": "Ada"})
        await database.save_quote(services.Quote("acme", 7, 1897))
        async with database.connection() as conn:
            await conn.save_quote(services.Quote("initech", 7, 2047))
    assert [span.needs for span in timeline.spans] == [
        services.NEEDS["db.update_profile"],
        ("quote.acme",),
        ("quote.initech",),
    ]


async def test_a_save_waits_only_for_its_own_quote_on_the_critical_path() -> None:
    """Saving the fastest quote after every quote is in is a waterfall the
    critical path shows: that save could end at 100 + 50 ms, so only the slowest
    quote bounds the run."""
    database = Database()
    with Timeline() as timeline:
        fastest, _ = await anyio.gather(services.quote_initech(7), services.quote_acme(7))
        await database.save_quote(fastest)
    slowest, save = LATENCY_MS["quote.acme"], LATENCY_MS["db.save_quote"]
    assert timeline.total_ms == slowest + save
    assert timeline.critical_path_ms() == slowest


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


async def test_a_product_query_reads_the_data_when_it_gets_a_connection() -> None:
    """A query queued for the pool starts when it gets a connection, and sees the writes before."""
    db = Database(pool_size=1)
    seen: list[int] = []

    async def read() -> None:
        seen.append((await db.get_product(42)).price_cents)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)  # 0 -> 100 ms
        await anyio.sleep(0.001)
        tg.start_soon(db.update_price, 42, 19900)  # queued: 100 -> 120 ms
        await anyio.sleep(0.001)
        tg.start_soon(read)  # queued behind the write: 120 -> 220 ms
    assert seen == [24900, 19900]
