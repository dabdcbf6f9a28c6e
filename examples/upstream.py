"""The simulated services of `examples.services` as real HTTP endpoints.

`upstream_app` is a Starlette app: each endpoint awaits the same call the
in-process examples make, so it answers after that service's latency from
`services.LATENCY_MS` (the one latency table) and with the same data. The
wait happens on the server, while the client holds an open request, as it
would with a slow service on the network. Serve it with `examples.serve`:

    async with serve(upstream_app) as upstream_url:
        async with httpx.AsyncClient(base_url=upstream_url) as client:
            session = (await client.get("/auth", headers=signed_in)).json()

- `GET /auth`: `services.auth(token)` with the request's bearer token;
  answers `{"token": ..., "user_id": ...}`, or 401 when it is not signed in;
- `GET /config`: `services.fetch_config()`;
- `GET /settings`: `services.fetch_settings()`;
- `GET /user_data/{user_id}`: `services.fetch_user_data(user_id)`.

A service in an outage (`services.outage(...)`) answers 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from examples import services

__all__ = ["upstream_app"]


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


async def _answer(call: Callable[[], Awaitable[Any]]) -> JSONResponse:
    """Await one simulated call; map its errors to the status a real service sends."""
    try:
        return JSONResponse(await call())
    except services.Unauthorized as exc:
        return JSONResponse({"error": str(exc)}, status_code=401)
    except services.ServiceUnavailable as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)


async def _auth(request: Request) -> JSONResponse:
    async def session() -> dict[str, Any]:
        found = await services.auth(_bearer_token(request))
        return {"token": found.token, "user_id": found.user_id}

    return await _answer(session)


async def _config(request: Request) -> JSONResponse:
    return await _answer(services.fetch_config)


async def _settings(request: Request) -> JSONResponse:
    return await _answer(services.fetch_settings)


async def _user_data(request: Request) -> JSONResponse:
    user_id: int = request.path_params["user_id"]
    return await _answer(lambda: services.fetch_user_data(user_id))


upstream_app = Starlette(
    routes=[
        Route("/auth", _auth),
        Route("/config", _config),
        Route("/settings", _settings),
        Route("/user_data/{user_id:int}", _user_data),
    ]
)
