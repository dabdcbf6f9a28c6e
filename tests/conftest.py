"""Shared fixtures: virtual clocks for both backends, a clean simulated backend."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import looptime
import pytest
import trio.testing

from examples import services, timeline
from tests.harness import ExampleError
from tests.sitebuild import skip_while_links_are_broken, the_site_build

pytest_plugins = ["tests.postgres_fixtures", "tests.http_fixtures"]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """With JUNIT_DIR set, each pytest run of `make test` writes its own JUnit report there.

    `make bench` and `make test-loaded` read them all; one `--junitxml` path
    in PYTEST_ADDOPTS would be overwritten by the next run of the same make.
    """
    folder = os.environ.get("JUNIT_DIR")
    if folder and not config.option.xmlpath and not hasattr(config, "workerinput"):
        config.option.xmlpath = str(Path(folder) / f"junit-{os.getpid()}.xml")


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Run `@pytest.mark.anyio` tests on both backends, each on a virtual clock."""
    if request.param == "asyncio":
        return "asyncio", {"loop_factory": looptime.new_event_loop}
    return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}


@pytest.fixture(autouse=True)
def clean_backend() -> None:
    """No fault or timeline from one test reaches the next."""
    services.faults.reset()
    timeline.opened.clear()


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once per pytest run with `mkdocs build --strict`; read it, never write."""
    skip_while_links_are_broken()
    build = the_site_build(tmp_path_factory)
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr}"
    return build.site


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Show a broken rule as its message (file:line first), once, not a traceback."""
    try:
        return (yield)
    except ExampleError as exc:
        message = str(exc)
    # Outside the `except`, so the report does not repeat the message as the
    # exception this one was raised while handling.
    pytest.fail(message, pytrace=False)
