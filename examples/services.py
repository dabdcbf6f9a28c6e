"""A simulated backend: every call the pattern pages make, with its latency.

`LATENCY_MS` is the single source of truth for how long each call takes; the
home page prints the same table, and a test keeps the two equal. Calls sleep
on the event loop's clock through AnyIO, so they run unchanged under asyncio
and Trio, on a real clock or a virtual one, and each one records a span on
the current `examples.timeline.Timeline`.

Failures read the way they do in production:

- `auth()` rejects a token that is not a signed-in session (`Unauthorized`);
- validators reject bad input (`ValidationError`);
- `with outage("config"):` makes every call to a service fail after its
  usual latency (`ServiceUnavailable`), `with circuit_open("config"):` makes
  it fail at once, before any wait, as a call through an open circuit
  breaker does, and `with stall("auth"):` makes it hang until it is
  cancelled.

`Database` keeps an in-memory store whose writes can be counted, and models a
real driver's rule that one connection runs one query at a time.
"""

from __future__ import annotations

from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    MutableMapping,
)
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import anyio

from examples.timeline import current_timeline

if TYPE_CHECKING:
    # Imported where it is used: most examples never make an HTTP request.
    import httpx

T = TypeVar("T")

# Milliseconds per call. Figures for the first three groups are the ones the
# original guide uses.
LATENCY_MS: dict[str, int] = {
    # 1.1 Prevent waterfall chains
    "auth": 50,
    "config": 50,
    "settings": 50,
    "user_data": 100,
    "validate_profile": 80,
    # 1.2 Parallelize independent operations
    "user": 100,
    "posts": 100,
    "comments": 100,
    "analytics": 100,
    "notifications": 100,
    "item": 100,
    "validate_title": 20,
    "validate_content": 40,
    "validate_image": 80,
    # 1.2 External HTTP APIs, served in-process by `external_api_app`
    "weather": 150,
    "news": 200,
    "stocks": 100,
    # 2.4 Parallel data fetching
    "header": 100,
    "sidebar": 100,
    "content": 100,
    "recommendations": 100,
    "widget": 200,
    "post_file": 30,
    # Database queries and writes (see `Database`)
    "db.get_user": 100,
    "db.get_post": 50,
    "db.get_profile": 60,
    "db.get_orders": 120,
    "db.get_notifications": 80,
    "db.get_preferences": 40,
    "db.count_orders": 80,
    "db.count_reviews": 80,
    "db.count_visits": 80,
    "db.update_profile": 20,
    "db.create_post": 20,
    # 2.1 Authenticate actions like API routes
    "db.update_post": 20,
    # 1.3 Strategic streaming boundaries
    "activity": 150,
    # 2.6 Work after the response: side effects the response does not need
    "audit_record": 30,
    "analytics_event": 100,
    "email": 200,
    # P1 Results as they arrive: three suppliers quote a price, each quote is saved
    "quote.acme": 300,
    "quote.globex": 200,
    "quote.initech": 100,
    "db.save_quote": 50,
    # P2 Cross-request caching: a product every visitor sees, and its price change
    "db.get_product": 100,
    "db.update_price": 20,
    # P3 Race and hedging: one read served by replicas, at their usual speed and
    # on a bad call (see `Replica`)
    "replica": 40,
    "replica.slow": 400,
}

# Calls that take another call's result as input: they cannot start before it
# ends. `Timeline.critical_path_ms()` uses this to compute the best possible
# total for a recorded run.
NEEDS: dict[str, tuple[str, ...]] = {
    "user_data": ("auth",),
    "recommendations": ("user",),
    "db.update_profile": ("auth", "validate_profile"),
    "db.create_post": ("validate_title", "validate_content", "validate_image"),
    # Renaming a post needs the session, the row (its author) and the new title.
    "db.update_post": ("auth", "db.get_post", "validate_title"),
    # 1.3: a user's activity is looked up by the user the page loaded.
    "activity": ("user",),
    # A side effect of a profile update reports a change that has been made.
    "audit_record": ("db.update_profile",),
    "analytics_event": ("db.update_profile",),
    "email": ("db.update_profile",),
}


# --- Errors ------------------------------------------------------------------


class ServiceError(Exception):
    """Base class of every error a simulated service raises."""


class ServiceUnavailable(ServiceError):
    """The service answered with an error (an outage)."""


class Unauthorized(ServiceError):
    """The request has no valid session."""


class ValidationError(ServiceError):
    """Submitted data was rejected."""


class InterfaceError(ServiceError):
    """A database connection was used by two operations at once."""


# --- Fault injection ---------------------------------------------------------


@dataclass
class Faults:
    """Which calls fail or hang. Process-wide: simulations run one at a time."""

    failing: set[str] = field(default_factory=set)
    failing_fast: set[str] = field(default_factory=set)
    stalled: set[str] = field(default_factory=set)
    # Fail only the call with this sequence number (0 = first call made), for
    # tests that make each call of a run fail in turn.
    fail_call_number: int | None = None
    stall_call_number: int | None = None
    calls_made: int = 0

    def reset(self) -> None:
        self.failing.clear()
        self.failing_fast.clear()
        self.stalled.clear()
        self.fail_call_number = None
        self.stall_call_number = None
        self.calls_made = 0


faults = Faults()


@contextmanager
def _added(names: tuple[str, ...], to: set[str]) -> Iterator[None]:
    """Add service names to a fault set for the duration of a block."""
    unknown = [name for name in names if name not in LATENCY_MS]
    if unknown:
        raise KeyError(f"unknown service(s) {unknown}; known: {sorted(LATENCY_MS)}")
    added = set(names) - to
    to |= added
    try:
        yield
    finally:
        to -= added


def outage(*services: str) -> AbstractContextManager[None]:
    """Inside this block, calls to these services fail with ServiceUnavailable."""
    return _added(services, faults.failing)


def circuit_open(*services: str) -> AbstractContextManager[None]:
    """Inside this block, calls to these services fail at once with ServiceUnavailable.

    No time passes and the call never waits, as when a client's circuit
    breaker is open: calls started in the same step fail in the same step,
    a stalled service's included. Not for the HTTP API's services, whose
    calls are requests that reach `external_api_app`: use `outage()`.
    """
    served = [name for name in services if name in HTTP_API_SERVICES]
    if served:
        raise ValueError(
            f"{served} are called over HTTP, and a breaker would not send the request: "
            "use outage() for them"
        )
    return _added(services, faults.failing_fast)


def stall(*services: str) -> AbstractContextManager[None]:
    """Inside this block, calls to these services never return."""
    return _added(services, faults.stalled)


# --- The one place where simulated time passes --------------------------------


async def simulate(
    service: str,
    label: str,
    result: Callable[[], T],
    needs: tuple[str, ...] | None = None,
) -> T:
    """Take the service's latency, record the span, then return `result()`.

    `result` runs after the latency, like a response arriving; it may raise
    (a rejected token, an invalid field). `needs` names the services this one
    call waits for when that depends on its arguments (a quote's save needs
    that supplier's quote); by default, the service's entry in `NEEDS`.
    """
    latency = LATENCY_MS[service]  # KeyError here means: add it to the table
    number = faults.calls_made
    faults.calls_made += 1
    timeline = current_timeline()
    if needs is None:
        needs = NEEDS.get(service, ())
    span = timeline.begin(label, service, needs) if timeline else None
    outcome = "ok"
    try:
        if service in faults.failing_fast:
            raise ServiceUnavailable(f"{service}: circuit open, not called")
        if service in faults.stalled or number == faults.stall_call_number:
            await anyio.sleep_forever()
        await anyio.sleep(latency / 1000)
        if service in faults.failing or number == faults.fail_call_number:
            raise ServiceUnavailable(f"{service}: 503 Service Unavailable")
        return result()
    except anyio.get_cancelled_exc_class():
        outcome = "cancelled"
        raise
    except BaseException as exc:
        outcome = f"failed: {type(exc).__name__}"
        raise
    finally:
        if timeline and span:
            timeline.finish(span, outcome)


# --- Data ----------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    token: str
    user_id: int


@dataclass(frozen=True)
class User:
    id: int
    name: str
    email: str


USERS = {
    1: User(1, "Ada", "ada@example.com"),
    2: User(2, "Grace", "grace@example.com"),
    3: User(3, "Linus", "linus@example.com"),
}

# token -> user id of a signed-in session
SESSIONS = {"session-ada": 1, "session-grace": 2, "session-linus": 3}

# post id -> user id of its author; a post not listed here has no author.
POST_AUTHORS = {7: 1, 8: 2}

# P2 Cross-request caching: product id -> (name, price in cents), before any write.
PRODUCTS = {42: ("Espresso machine", 24900), 43: ("Coffee grinder", 8900)}


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    price_cents: int


POST_FILES = {
    "hello-world": "# Hello, world\n\nFirst post.\n",
    "waterfalls": "# Waterfalls\n\nLatency adds up along the critical path.\n",
}


def _user(user_id: int) -> User:
    return USERS.get(user_id) or User(user_id, f"user{user_id}", f"user{user_id}@example.com")


# --- HTTP-style services ----------------------------------------------------------


async def auth(token: str | None) -> Session:
    """Resolve a session token. Raises Unauthorized when it is not signed in."""

    def check() -> Session:
        if token not in SESSIONS:
            raise Unauthorized("no valid session")
        return Session(token=token, user_id=SESSIONS[token])

    return await simulate("auth", "auth", check)


async def fetch_config() -> dict[str, Any]:
    return await simulate("config", "config", lambda: {"theme": "dark", "beta": False})


async def fetch_settings() -> dict[str, Any]:
    return await simulate("settings", "settings", lambda: {"locale": "en", "tz": "UTC"})


async def fetch_user_data(user_id: int) -> dict[str, Any]:
    return await simulate(
        "user_data", f"user_data({user_id})", lambda: {"user_id": user_id, "plan": "pro"}
    )


async def fetch_user(user_id: int) -> User:
    return await simulate("user", f"user({user_id})", lambda: _user(user_id))


async def fetch_posts(user_id: int) -> list[str]:
    return await simulate(
        "posts", f"posts({user_id})", lambda: [f"post {n} by {user_id}" for n in (1, 2)]
    )


async def fetch_comments(user_id: int) -> list[str]:
    return await simulate(
        "comments", f"comments({user_id})", lambda: [f"comment {n}" for n in (1, 2, 3)]
    )


async def fetch_analytics(user_id: int) -> dict[str, int]:
    return await simulate("analytics", f"analytics({user_id})", lambda: {"views": 1200})


async def fetch_notifications(user_id: int) -> list[str]:
    return await simulate("notifications", f"notifications({user_id})", lambda: ["welcome back"])


async def fetch_item(item_id: int) -> dict[str, Any]:
    return await simulate("item", f"item({item_id})", lambda: {"id": item_id})


async def fetch_recommendations(user: User) -> list[str]:
    return await simulate(
        "recommendations", f"recommendations({user.id})", lambda: [f"for {user.name}"]
    )


async def fetch_header() -> dict[str, str]:
    return await simulate("header", "header", lambda: {"title": "Dashboard"})


async def fetch_sidebar() -> list[str]:
    return await simulate("sidebar", "sidebar", lambda: ["Home", "Reports", "Settings"])


async def fetch_content() -> str:
    return await simulate("content", "content", lambda: "Latest numbers")


async def fetch_widget(name: str) -> dict[str, str]:
    return await simulate("widget", f"widget({name})", lambda: {"widget": name})


async def fetch_activity(user_id: int) -> list[str]:
    """A user's recent activity (page 1.3)."""
    return await simulate("activity", f"activity({user_id})", lambda: [f"user {user_id} signed in"])


async def read_post_file(slug: str) -> str:
    """Read a post's Markdown source; raises FileNotFoundError for an unknown slug."""

    def read() -> str:
        if slug not in POST_FILES:
            raise FileNotFoundError(f"posts/{slug}.md")
        return POST_FILES[slug]

    return await simulate("post_file", f"post_file({slug})", read)


# --- 2.6 Side effects of a change: nothing in the response depends on them ----------


async def write_audit_record(user_id: int, action: str) -> None:
    """Record who changed what (an audit trail)."""
    await simulate("audit_record", f"audit_record({user_id})", lambda: None)


async def track_event(user_id: int, event: str) -> None:
    """Send an analytics event."""
    await simulate("analytics_event", f"analytics_event({user_id})", lambda: None)


async def send_email(user_id: int, subject: str) -> None:
    """Send the user an e-mail (a confirmation, a receipt)."""
    await simulate("email", f"email({user_id})", lambda: None)


# --- Price quotes (P1 Results as they arrive) ------------------------------------


@dataclass(frozen=True)
class Quote:
    """A supplier's price for an item, in cents."""

    supplier: str
    item_id: int
    price: int


QUOTE_PRICES = {"acme": 1890, "globex": 1950, "initech": 2040}


def _quote(supplier: str, item_id: int) -> Callable[[], Quote]:
    return lambda: Quote(supplier, item_id, QUOTE_PRICES[supplier] + item_id)


async def quote_acme(item_id: int) -> Quote:
    return await simulate("quote.acme", f"acme({item_id})", _quote("acme", item_id))


async def quote_globex(item_id: int) -> Quote:
    return await simulate("quote.globex", f"globex({item_id})", _quote("globex", item_id))


async def quote_initech(item_id: int) -> Quote:
    return await simulate("quote.initech", f"initech({item_id})", _quote("initech", item_id))


# --- Validation -----------------------------------------------------------------


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValidationError(message)


async def validate_profile(form: Mapping[str, str]) -> dict[str, str]:
    """Check a profile form; returns the cleaned fields."""

    def check() -> dict[str, str]:
        name = form.get("name", "").strip()
        _require(bool(name), "name: must not be empty")
        return {"name": name}

    return await simulate("validate_profile", "validate_profile", check)


async def validate_title(title: str) -> str:
    def check() -> str:
        _require(0 < len(title.strip()) <= 80, "title: 1 to 80 characters")
        return title.strip()

    return await simulate("validate_title", "validate_title", check)


async def validate_content(content: str) -> str:
    def check() -> str:
        _require(len(content.strip()) >= 10, "content: at least 10 characters")
        return content.strip()

    return await simulate("validate_content", "validate_content", check)


async def validate_image(url: str) -> str:
    def check() -> str:
        _require(url.startswith("https://"), "image: must be an https URL")
        return url

    return await simulate("validate_image", "validate_image", check)


# --- Database ---------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    table: str
    key: int
    values: Mapping[str, Any]


class _Queries:
    """The queries both a Database and a single Connection can run."""

    async def _query(
        self,
        name: str,
        label: str,
        result: Callable[[], T],
        needs: tuple[str, ...] | None = None,
    ) -> T:
        raise NotImplementedError

    async def get_user(self, user_id: int) -> User | None:
        return await self._query(
            "db.get_user", f"db.get_user({user_id})", lambda: USERS.get(user_id)
        )

    async def get_post(self, post_id: int) -> dict[str, Any]:
        return await self._query(
            "db.get_post",
            f"db.get_post({post_id})",
            lambda: {
                "id": post_id,
                "title": f"Post {post_id}",
                "author_id": POST_AUTHORS.get(post_id),
            },
        )

    async def get_profile(self, user_id: int) -> dict[str, Any]:
        return await self._query(
            "db.get_profile", f"db.get_profile({user_id})", lambda: {"bio": "Writes code."}
        )

    async def get_orders(self, user_id: int) -> list[int]:
        return await self._query("db.get_orders", f"db.get_orders({user_id})", lambda: [101, 102])

    async def get_notifications(self, user_id: int) -> list[str]:
        return await self._query(
            "db.get_notifications", f"db.get_notifications({user_id})", lambda: ["order shipped"]
        )

    async def get_preferences(self, user_id: int) -> dict[str, str]:
        return await self._query(
            "db.get_preferences", f"db.get_preferences({user_id})", lambda: {"currency": "EUR"}
        )

    async def count_orders(self, user_id: int) -> int:
        return await self._query("db.count_orders", f"db.count_orders({user_id})", lambda: 12)

    async def count_reviews(self, user_id: int) -> int:
        return await self._query("db.count_reviews", f"db.count_reviews({user_id})", lambda: 4)

    async def count_visits(self, user_id: int) -> int:
        return await self._query("db.count_visits", f"db.count_visits({user_id})", lambda: 87)

    async def update_profile(self, user_id: int, values: Mapping[str, Any]) -> None:
        await self._query(
            "db.update_profile",
            f"db.update_profile({user_id})",
            lambda: self._record(Write("profiles", user_id, dict(values))),
        )

    async def update_post(self, post_id: int, values: Mapping[str, Any]) -> None:
        await self._query(
            "db.update_post",
            f"db.update_post({post_id})",
            lambda: self._record(Write("posts", post_id, dict(values))),
        )

    async def save_quote(self, quote: Quote) -> None:
        await self._query(
            "db.save_quote",
            f"db.save_quote({quote.supplier})",
            lambda: self._record(Write("quotes", quote.item_id, {quote.supplier: quote.price})),
            needs=(f"quote.{quote.supplier}",),  # this supplier's quote, not the others'
        )

    async def create_post(self, values: Mapping[str, Any]) -> int:
        return await self._query(
            "db.create_post",
            "db.create_post",
            lambda: self._record(Write("posts", 0, dict(values))).key,
        )

    # P2 Cross-request caching
    async def get_product(self, product_id: int) -> Product:
        # Read when the query starts, as a statement's snapshot is: a write
        # that ends while the query runs is not in its result.
        product = self._product(product_id)
        return await self._query("db.get_product", f"db.get_product({product_id})", lambda: product)

    async def update_price(self, product_id: int, price_cents: int) -> None:
        await self._query(
            "db.update_price",
            f"db.update_price({product_id})",
            lambda: self._record(Write("products", product_id, {"price_cents": price_cents})),
        )

    def _record(self, write: Write) -> Write:
        raise NotImplementedError

    def _product(self, product_id: int) -> Product:
        raise NotImplementedError


class Database(_Queries):
    """An in-memory database behind a pool of `pool_size` connections.

    Query methods on the Database borrow a connection for one query, like a
    driver's pool. `db.connection()` lends one connection for several.
    `queries` lists every query run and `writes` every committed write, so an
    example can show what happened and what did not.
    """

    def __init__(self, pool_size: int = 10) -> None:
        self.pool_size = pool_size
        self._pool = anyio.Semaphore(pool_size)
        self.queries: list[str] = []
        self.writes: list[Write] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """Borrow one connection; waits while all `pool_size` are in use."""
        async with self._pool:
            yield Connection(self)

    async def _query(
        self,
        name: str,
        label: str,
        result: Callable[[], T],
        needs: tuple[str, ...] | None = None,
    ) -> T:
        async with self.connection() as conn:
            return await conn._query(name, label, result, needs)

    async def get_product(self, product_id: int) -> Product:
        # Its snapshot is read when the query starts: once a connection is free.
        async with self.connection() as conn:
            return await conn.get_product(product_id)

    def _record(self, write: Write) -> Write:
        self.writes.append(write)
        return write

    def _product(self, product_id: int) -> Product:
        """The product as the last committed price write left it."""
        name, price_cents = PRODUCTS.get(product_id, (f"product {product_id}", 1000))
        for write in self.writes:
            if write.table == "products" and write.key == product_id:
                price_cents = write.values["price_cents"]
        return Product(product_id, name, price_cents)


class Connection(_Queries):
    """One connection: runs one query at a time, like asyncpg or a SQLAlchemy session."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._busy_with: str | None = None

    async def _query(
        self,
        name: str,
        label: str,
        result: Callable[[], T],
        needs: tuple[str, ...] | None = None,
    ) -> T:
        if self._busy_with is not None:
            raise InterfaceError(
                f"cannot run {label}: another operation ({self._busy_with}) is in progress"
            )
        self._busy_with = label
        try:
            self._database.queries.append(label)
            return await simulate(name, label, result, needs)
        finally:
            self._busy_with = None

    def _record(self, write: Write) -> Write:
        return self._database._record(write)

    def _product(self, product_id: int) -> Product:
        return self._database._product(product_id)


# --- External HTTP APIs, served in-process ---------------------------------------

# The services `external_api_app` serves, each at GET /<name>.
HTTP_API_SERVICES = ("weather", "news", "stocks")

# The ASGI interface, spelled as in `starlette.types`.
Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]


async def external_api_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A tiny ASGI app serving /weather, /news and /stocks with their latency.

    Use it through `api_client()`: requests go to the app in-process, with no
    network, and each request records a span like any other call.
    """
    import json

    if scope["type"] != "http":
        return
    service = scope["path"].strip("/")
    if service not in HTTP_API_SERVICES:
        status, body = 404, {"error": "not found"}
    else:
        try:
            body = await simulate(service, f"GET /{service}", lambda: {service: "ok"})
            status = 200
        except ServiceUnavailable as exc:
            status, body = 503, {"error": str(exc)}
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def api_client() -> httpx.AsyncClient:
    """An httpx.AsyncClient wired to `external_api_app`; use it with `async with`."""
    import httpx

    transport = httpx.ASGITransport(app=external_api_app)
    return httpx.AsyncClient(transport=transport, base_url="https://api.example")


# --- Replicas of one read-only service (P3 Race and hedging) ----------------------


async def read_replica(replica: str, key: str) -> str:
    """A read from one replica at its usual speed (`replica` in the latency table)."""
    return await simulate("replica", f"{replica}.get({key})", lambda: f"{key} from {replica}")


async def read_replica_slowly(replica: str, key: str) -> str:
    """The same read on one of the replica's bad calls (`replica.slow`): a pause, a cold cache."""
    return await simulate("replica.slow", f"{replica}.get({key})", lambda: f"{key} from {replica}")


class Replica:
    """One copy of a read-only service, whose latency varies from call to call.

    A call takes `LATENCY_MS["replica"]`, except the replica's bad calls, which
    take `LATENCY_MS["replica.slow"]`: every call when `slow=True`, otherwise
    every `slow_every`-th call it receives (the 20th, 40th, ... for
    `slow_every=20`: 5% of calls, so its p95 is the usual latency and its p99
    the slow one). `offset` shifts that rhythm by as many calls (the 10th,
    30th, ... for `offset=10`), so two replicas need not be slow on the same
    request. `calls` counts the calls it received, the ones its caller
    cancelled included: what the callers cost this backend.
    """

    def __init__(
        self, name: str, *, slow_every: int = 0, offset: int = 0, slow: bool = False
    ) -> None:
        self.name = name
        self.slow_every = slow_every
        self.offset = offset
        self.slow = slow
        self.calls = 0

    async def get(self, key: str) -> str:
        """Read `key`; the answer names the replica that served it."""
        self.calls += 1
        bad_call = self.slow or (
            self.slow_every > 0 and (self.calls + self.offset) % self.slow_every == 0
        )
        if bad_call:
            return await read_replica_slowly(self.name, key)
        return await read_replica(self.name, key)
