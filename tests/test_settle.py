"""`examples.settle`: every call runs to the end; failures become outcomes."""

from __future__ import annotations

import anyio
import pytest

from examples.services import fetch_comments, fetch_posts, fetch_user, outage, stall
from examples.settle import Failed, Ok, settle, value_or
from examples.timeline import Timeline

pytestmark = [pytest.mark.anyio, pytest.mark.every_python]  # also on each other Python


async def test_outcomes_come_back_in_call_order() -> None:
    with Timeline() as timeline:
        outcomes = await settle(fetch_user(1), fetch_posts(1), fetch_comments(1))
    assert [type(o) for o in outcomes] == [Ok, Ok, Ok]
    assert outcomes[0].value.name == "Ada"
    assert timeline.total_ms == 100  # concurrent, not 300


async def test_a_failure_does_not_cancel_the_others() -> None:
    with Timeline() as timeline, outage("posts"):
        user, posts, comments = await settle(fetch_user(1), fetch_posts(1), fetch_comments(1))
    assert isinstance(posts, Failed)
    assert str(posts.error) == "posts: 503 Service Unavailable"
    assert isinstance(user, Ok) and isinstance(comments, Ok)
    assert [span.outcome for span in timeline.spans].count("ok") == 2


async def test_value_or_gives_the_default_for_a_failure() -> None:
    with outage("user"):
        user, posts = await settle(fetch_user(1), fetch_posts(1))
    assert value_or(user, None) is None
    assert value_or(posts, []) == ["post 1 by 1", "post 2 by 1"]


async def test_cancelling_the_caller_cancels_every_call() -> None:
    with Timeline() as timeline, stall("user"):
        with anyio.move_on_after(0.15) as scope:
            await settle(fetch_user(1), fetch_posts(1))
    assert scope.cancelled_caught
    outcomes = {span.label: span.outcome for span in timeline.spans}
    assert outcomes == {"user(1)": "cancelled", "posts(1)": "ok"}
    assert timeline.total_ms == 150


def test_value_or_refuses_what_is_not_an_outcome() -> None:
    with pytest.raises(TypeError, match="takes an Ok or a Failed, not dict"):
        value_or({"theme": "dark"}, None)  # type: ignore[arg-type]
