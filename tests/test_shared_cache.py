"""`examples.shared_cache`: one load per key across requests, on asyncio and Trio virtual clocks."""

from __future__ import annotations

import time
from contextvars import ContextVar

import anyio
import pytest

from examples.services import Database, Product, ServiceUnavailable, outage, stall
from examples.shared_cache import CacheClosedError, SharedCache
from examples.timeline import Timeline

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python


@pytest.fixture
def db() -> Database:
    return Database()


def product_loader(db: Database, product_id: int = 42):
    return lambda: db.get_product(product_id)


async def test_concurrent_misses_share_one_load(db: Database) -> None:
    cache: SharedCache[int, Product] = SharedCache(ttl=30)
    prices: list[int] = []

    async def request() -> None:
        prices.append((await cache.get(42, product_loader(db))).price_cents)

    with Timeline() as timeline:
        async with cache, anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(request)
    assert prices == [24900] * 50
    assert db.queries == ["db.get_product(42)"]
    assert cache.loads == 1
    assert timeline.total_ms == 100


async def test_a_fresh_value_is_served_without_a_query_until_exactly_ttl(db: Database) -> None:
    async with SharedCache[int, Product](ttl=30) as cache:
        await cache.get(42, product_loader(db))  # stored at 100 ms, expires at 30.1 s
        await anyio.sleep(30 - 0.001)
        with Timeline() as hit:
            await cache.get(42, product_loader(db))
        assert hit.total_ms == 0 and len(db.queries) == 1
        await anyio.sleep(0.001)  # now exactly ttl after the load ended
        await cache.get(42, product_loader(db))
    assert db.queries == ["db.get_product(42)"] * 2


async def test_the_misses_after_an_expiry_share_one_load_too(db: Database) -> None:
    async with SharedCache[int, Product](ttl=1) as cache:
        await cache.get(42, product_loader(db))
        await anyio.sleep(1)  # expired
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(cache.get, 42, product_loader(db))
    assert cache.loads == 2


async def test_time_monotonic_moves_only_at_real_speed_on_the_virtual_clock() -> None:
    """Why the cache reads anyio.current_time(): a TTL on time.monotonic never expires here."""
    loop_before, monotonic_before = anyio.current_time(), time.monotonic()
    await anyio.sleep(60)
    assert anyio.current_time() - loop_before == pytest.approx(60)
    assert time.monotonic() - monotonic_before < 5


def test_on_trio_the_loop_clock_is_not_time_monotonic_even_in_production() -> None:
    """Trio's default clock adds a random offset of hours: the two clocks never mix."""

    async def offset() -> float:
        return anyio.current_time() - time.monotonic()

    assert abs(anyio.run(offset, backend="trio")) > 10_000


async def test_different_keys_load_separately(db: Database) -> None:
    async with SharedCache[int, Product](ttl=30) as cache:
        first = await cache.get(42, product_loader(db, 42))
        second = await cache.get(43, product_loader(db, 43))
    assert (first.name, second.name) == ("Espresso machine", "Coffee grinder")
    assert cache.loads == 2


async def test_a_cancelled_caller_does_not_cancel_the_load_for_the_others(db: Database) -> None:
    results: dict[str, str] = {}

    # Opened before the cache: a load records its span in the cache's context.
    with Timeline() as timeline:
        cache: SharedCache[int, Product] = SharedCache(ttl=30)

        async def impatient() -> None:
            with anyio.move_on_after(0.05):
                results["impatient"] = (await cache.get(42, product_loader(db))).name
            results.setdefault("impatient", "gave up")

        async def patient(name: str) -> None:
            await anyio.sleep(0.01)
            results[name] = (await cache.get(42, product_loader(db))).name

        async with cache, anyio.create_task_group() as tg:
            tg.start_soon(impatient)
            tg.start_soon(patient, "b")
            tg.start_soon(patient, "c")
    assert results == {"impatient": "gave up", "b": "Espresso machine", "c": "Espresso machine"}
    assert [span.outcome for span in timeline.spans] == ["ok"]
    assert timeline.total_ms == 100


async def test_when_every_caller_leaves_the_load_finishes_and_is_stored(db: Database) -> None:
    with Timeline() as timeline:
        async with SharedCache[int, Product](ttl=30) as cache:
            with anyio.move_on_after(0.03):
                await cache.get(42, product_loader(db))
            await anyio.sleep(0.1)  # the load ends at 100 ms, nobody waiting
            started = anyio.current_time()
            product = await cache.get(42, product_loader(db))
            assert anyio.current_time() == started  # served from the store
    assert product.price_cents == 24900
    assert [span.outcome for span in timeline.spans] == ["ok"]
    assert cache.loads == 1


async def test_a_load_that_hangs_times_out_and_frees_its_key(db: Database) -> None:
    async with SharedCache[int, Product](ttl=30, fill_timeout=1) as cache:
        with stall("db.get_product"):
            with pytest.raises(TimeoutError):
                await cache.get(42, product_loader(db))
        assert anyio.current_time() == pytest.approx(1, abs=0.01)
        product = await cache.get(42, product_loader(db))
    assert product.price_cents == 24900
    assert cache.loads == 2


async def test_a_load_that_waits_for_its_own_key_ends_at_fill_timeout() -> None:
    cache: SharedCache[str, str] = SharedCache(ttl=30, fill_timeout=2)

    async def load() -> str:
        return await cache.get("self", load)  # joins its own fill: waits for itself

    async with cache:
        with pytest.raises(TimeoutError):
            await cache.get("self", load)
        assert anyio.current_time() == pytest.approx(2, abs=0.01)


async def test_a_failure_reaches_every_waiter_each_as_its_own_copy_and_is_not_kept(
    db: Database,
) -> None:
    errors: list[BaseException] = []

    async with SharedCache[int, Product](ttl=30) as cache:

        async def request() -> None:
            try:
                await cache.get(42, product_loader(db))
            except ServiceUnavailable as exc:
                errors.append(exc)

        with outage("db.get_product"):
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(request)
        assert len(cache) == 0
        retried = await cache.get(42, product_loader(db))
    assert [str(error) for error in errors] == ["db.get_product: 503 Service Unavailable"] * 3
    assert len({id(error) for error in errors}) == 3
    causes = {id(error.__cause__) for error in errors}
    assert len(causes) == 1 and None not in {error.__cause__ for error in errors}
    assert retried.price_cents == 24900
    assert db.queries == ["db.get_product(42)"] * 2


async def test_error_ttl_keeps_a_failure_for_that_long(db: Database) -> None:
    async with SharedCache[int, Product](ttl=30, error_ttl=5) as cache:
        with outage("db.get_product"):
            for _ in range(3):
                with pytest.raises(ServiceUnavailable):
                    await cache.get(42, product_loader(db))
        assert db.queries == ["db.get_product(42)"]  # the error was replayed twice
        await anyio.sleep(5)
        product = await cache.get(42, product_loader(db))
    assert product.price_cents == 24900
    assert len(db.queries) == 2


async def test_an_invalidate_during_a_load_keeps_its_stale_value_out(db: Database) -> None:
    seen: dict[str, int] = {}

    async with SharedCache[int, Product](ttl=30) as cache:

        async def early_reader() -> None:  # its load starts before the write
            seen["early"] = (await cache.get(42, product_loader(db))).price_cents

        async def writer() -> None:
            await anyio.sleep(0.01)
            await db.update_price(42, 19900)
            cache.invalidate(42)
            seen["after write"] = (await cache.get(42, product_loader(db))).price_cents

        async with anyio.create_task_group() as tg:
            tg.start_soon(early_reader)
            tg.start_soon(writer)
        seen["later"] = (await cache.get(42, product_loader(db))).price_cents
    # The early reader asked before the write: it gets what its load read.
    assert seen == {"early": 24900, "after write": 19900, "later": 19900}
    assert cache.loads == 2


async def test_invalidate_all_forgets_every_key(db: Database) -> None:
    async with SharedCache[int, Product](ttl=30) as cache:
        await cache.get(42, product_loader(db, 42))
        await cache.get(43, product_loader(db, 43))
        cache.invalidate_all()
        assert len(cache) == 0
        await cache.get(42, product_loader(db, 42))
    assert cache.loads == 3


async def test_the_least_recently_used_value_is_evicted_first(db: Database) -> None:
    async with SharedCache[int, Product](ttl=30, max_entries=2) as cache:
        for product_id in (1, 2):
            await cache.get(product_id, product_loader(db, product_id))
        await cache.get(1, product_loader(db, 1))  # 1 is now the most recently used
        await cache.get(3, product_loader(db, 3))  # evicts 2
        assert len(cache) == 2
        await cache.get(1, product_loader(db, 1))
        assert cache.loads == 3
        await cache.get(2, product_loader(db, 2))
    assert cache.loads == 4


async def test_a_load_reads_the_caches_context_not_the_callers() -> None:
    current_user: ContextVar[str] = ContextVar("current_user", default="nobody")
    cache: SharedCache[str, str] = SharedCache(ttl=30)

    async def greeting() -> str:
        await anyio.sleep(0.01)
        return f"hello {current_user.get()}"

    async with cache:
        current_user.set("ada")  # a request's own variable, set after the cache opened
        assert await cache.get("greeting", greeting) == "hello nobody"


async def test_get_outside_an_open_cache_raises() -> None:
    cache: SharedCache[int, int] = SharedCache(ttl=1)

    async def load() -> int:
        return 1

    with pytest.raises(CacheClosedError, match="async with cache"):
        await cache.get(1, load)
    async with cache:
        with pytest.raises(RuntimeError, match="already open"):
            await cache.__aenter__()
    with pytest.raises(CacheClosedError):
        await cache.get(1, load)


async def test_closing_the_cache_cancels_its_loads_and_tells_the_waiters(db: Database) -> None:
    errors: list[BaseException] = []
    cache: SharedCache[int, Product] = SharedCache(ttl=30)

    async def request() -> None:
        try:
            await cache.get(42, product_loader(db))
        except CacheClosedError as exc:
            errors.append(exc)

    with Timeline() as timeline:
        async with anyio.create_task_group() as tg:
            async with cache:
                tg.start_soon(request)
                await anyio.sleep(0.05)
    assert [str(error) for error in errors] == ["the SharedCache closed while loading 42"]
    assert [span.outcome for span in timeline.spans] == ["cancelled"]


def test_invalid_settings_are_refused() -> None:
    for settings in ({"ttl": 0}, {"ttl": 1, "max_entries": 0}, {"ttl": 1, "error_ttl": -1}):
        with pytest.raises(ValueError):
            SharedCache(**settings)  # type: ignore[arg-type]


class UpstreamError(Exception):
    """Built like httpx.HTTPStatusError: its __init__ takes keyword-only arguments,
    so copy.copy(), which calls the class with `args` alone, cannot rebuild it."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


async def test_an_error_that_copy_cannot_rebuild_still_reaches_each_caller_as_its_own() -> None:
    import traceback

    async def load() -> str:
        raise UpstreamError("upstream answered 503", status=503)

    caught: list[UpstreamError] = []
    async with SharedCache[str, str](ttl=30, error_ttl=5) as cache:
        for _ in range(3):
            try:
                await cache.get("config", load)
            except UpstreamError as exc:
                caught.append(exc)
    assert len({id(error) for error in caught}) == 3
    assert [error.status for error in caught] == [503] * 3
    original = caught[0].__cause__
    assert isinstance(original, UpstreamError) and original not in caught
    assert all(error.__cause__ is original for error in caught)
    # Every caller's traceback is as long as the first one's: nothing piles up.
    assert len({len(traceback.extract_tb(error.__traceback__)) for error in caught}) == 1


async def test_a_cancellation_raised_inside_a_load_fails_that_load_not_the_cache(
    anyio_backend_name: str, db: Database
) -> None:
    if anyio_backend_name != "asyncio":
        pytest.skip("only asyncio lets a task raise a cancellation nobody asked for")
    import asyncio

    async def cancelled_inside() -> str:
        await anyio.sleep(0.01)
        raise asyncio.CancelledError  # as awaiting a future another task cancelled does

    async def product_name(product_id: int) -> str:
        return (await db.get_product(product_id)).name

    results: dict[str, str] = {}
    async with SharedCache[object, str](ttl=30) as cache:

        async def other_key() -> None:  # in flight meanwhile: must not be cancelled
            results["other"] = await cache.get(43, lambda: product_name(43))

        async with anyio.create_task_group() as tg:
            tg.start_soon(other_key)
            await anyio.sleep(0.001)  # other_key has started its load
            with pytest.raises(RuntimeError, match="raised a cancellation") as failed:
                await cache.get("config", cancelled_inside)
            assert isinstance(failed.value.__cause__, RuntimeError)
        # The task that opened the cache was not cancelled, and the cache is open.
        results["after"] = await cache.get(42, lambda: product_name(42))
    assert results == {"other": "Coffee grinder", "after": "Espresso machine"}


class Uncopyable(Exception):
    """An exception neither copy.copy() nor a copy without __init__ can rebuild."""

    def __new__(cls, *, code: int) -> Uncopyable:
        return super().__new__(cls, f"code {code}")

    def __init__(self, *, code: int) -> None:
        super().__init__(f"code {code}")


async def test_an_error_that_cannot_be_copied_is_raised_as_is_with_the_loads_traceback() -> None:
    import traceback

    async def load() -> str:
        raise Uncopyable(code=7)

    caught: list[Uncopyable] = []
    lengths: list[int] = []
    async with SharedCache[str, str](ttl=30, error_ttl=5) as cache:
        for _ in range(3):
            try:
                await cache.get("config", load)
            except Uncopyable as exc:
                caught.append(exc)
                lengths.append(len(traceback.extract_tb(exc.__traceback__)))
    assert len({id(error) for error in caught}) == 1  # the one object
    assert caught[0].__cause__ is not caught[0]
    assert len(set(lengths)) == 1, f"the traceback grew with each raise: {lengths}"


async def test_closing_waits_for_the_loads_it_cancels_to_end(db: Database) -> None:
    cleaned_up: list[float] = []
    errors: list[str] = []

    async def load() -> Product:
        try:
            return await db.get_product(42)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.5)  # e.g. handing a connection back to its pool
                cleaned_up.append(anyio.current_time())

    async def request(cache: SharedCache[int, Product]) -> None:
        try:
            await cache.get(42, load)
        except CacheClosedError as exc:
            errors.append(str(exc))

    async with anyio.create_task_group() as tg:
        async with SharedCache[int, Product](ttl=30) as cache:
            tg.start_soon(request, cache)
            await anyio.sleep(0.05)
        closed_at = anyio.current_time()
    assert cleaned_up == [pytest.approx(0.55)] and closed_at == pytest.approx(0.55)
    assert errors == ["the SharedCache closed while loading 42"]


async def test_keys_compare_as_dict_keys_do(db: Database) -> None:
    async def one() -> str:
        return "one"

    async def unexpected() -> str:
        raise AssertionError("1.0 and True are the key 1")

    async with SharedCache[object, str](ttl=30) as cache:
        assert await cache.get(1, one) == "one"
        assert await cache.get(1.0, unexpected) == "one"
        assert await cache.get(True, unexpected) == "one"
        with pytest.raises(TypeError, match="unhashable"):
            await cache.get([1], one)
    assert cache.loads == 1


async def test_eviction_while_loads_are_in_flight_keeps_only_max_entries(db: Database) -> None:
    async def miss() -> Product:
        raise LookupError("not stored")  # a failure is not stored: probing evicts nothing

    async with SharedCache[int, Product](ttl=30, max_entries=1) as cache:
        async with anyio.create_task_group() as tg:
            for product_id in (1, 2, 3):
                tg.start_soon(cache.get, product_id, product_loader(db, product_id))
        assert len(cache) == 1
        hits = 0
        for product_id in (1, 2, 3):
            try:
                await cache.get(product_id, miss)
                hits += 1
            except LookupError:
                pass
    assert hits == 1


async def test_invalidate_all_during_loads_keeps_every_stale_value_out(db: Database) -> None:
    async with SharedCache[int, Product](ttl=30) as cache:
        async with anyio.create_task_group() as tg:
            for product_id in (42, 43):
                tg.start_soon(cache.get, product_id, product_loader(db, product_id))
            await anyio.sleep(0.05)
            cache.invalidate_all()
        assert len(cache) == 0
        await cache.get(42, product_loader(db, 42))
    assert cache.loads == 3


async def test_a_detached_load_that_ends_last_does_not_overwrite_the_new_value(
    db: Database,
) -> None:
    async def slow_old_price() -> Product:
        await anyio.sleep(0.5)
        return Product(42, "Espresso machine", 24900)

    async with SharedCache[int, Product](ttl=30) as cache:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cache.get, 42, slow_old_price)  # ends at 500 ms
            await anyio.sleep(0.01)
            await db.update_price(42, 19900)
            cache.invalidate(42)
            fresh = await cache.get(42, product_loader(db))  # ends at 130 ms
        assert anyio.current_time() == pytest.approx(0.5)
        later = await cache.get(42, product_loader(db))
    assert (fresh.price_cents, later.price_cents) == (19900, 19900)
    assert cache.loads == 2
