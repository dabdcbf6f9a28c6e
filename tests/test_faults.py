"""Every doc block that calls a simulated service, with each call failing or hanging in turn.

The matrix is built from the blocks themselves (see `tests/faultmatrix.py`):
a new page is covered without a new test. Items are named
`docs/page.md:FIRST-LAST:fail-call-N:clock` (and `stall-call-N` for blocks
that set a deadline), so `pytest tests/test_faults.py -k index.md` runs one
page's matrix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import faultmatrix, perrun

Matrix = tuple[list[faultmatrix.Baseline], list[faultmatrix.FaultCase]]


def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    """Every block's normal run and the fault cases they give.

    Collecting this module needs them: the first xdist worker to collect it
    runs the blocks, and the others read its result (tests/perrun.py).
    """

    def find(_folder: Path) -> Matrix:
        baselines = faultmatrix.baselines(faultmatrix.all_examples())
        return baselines, faultmatrix.cases(baselines)

    return perrun.once(tmp_path_factory, "faultmatrix", find)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.name == "test_block_survives_fault":
        # The tmp_path_factory fixture is this object; fixtures do not exist yet here.
        _, cases = matrix(metafunc.config._tmp_path_factory)  # type: ignore[attr-defined]
        metafunc.parametrize("case", cases, ids=str)


@pytest.fixture(scope="session")
def baselines_and_cases(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    return matrix(tmp_path_factory)


def test_block_survives_fault(case: faultmatrix.FaultCase, tmp_path: Path) -> None:
    outcome = faultmatrix.run_case(case, tmp_path)
    if outcome.hung:
        pytest.skip(outcome.hung_reason or f"{case.base.name}: call {case.number} hung")
    if not outcome.problems:
        return
    message = (
        f"{case.base.name}: with {faultmatrix.failing_call(case)} "
        f"{'failing' if case.kind == 'fail' else 'hanging'} ({case.clock} clock):\n"
        + "\n".join(f"  - {problem}" for problem in outcome.problems)
    )
    if faultmatrix.correct_tab(case.base.example) is None:
        # A block outside the asyncio|AnyIO tabs may show code that is wrong on
        # purpose (a trap, the incorrect version); how it breaks is reported,
        # not failed. Correct versions must pass.
        pytest.xfail(f"not a correct version; {message}")
    pytest.fail(message, pytrace=False)


def test_matrix_covers_blocks_that_call_services(baselines_and_cases: Matrix) -> None:
    """Every block whose normal run makes a call is in the matrix."""
    baselines, cases = baselines_and_cases
    covered = {case.base.name for case in cases}
    calling = {base.name for base in baselines if base.calls and not base.error}
    assert calling, "no block calls a simulated service"
    assert covered == calling
    print(faultmatrix.summary(baselines, cases))


# --- The matrix catches what it claims to catch -----------------------------------------


def _outcomes(tmp_path: Path, block: str) -> dict[str, faultmatrix.Outcome]:
    """Run the fault matrix of one inline block: {"fail-call-0:asyncio": outcome, ...}."""
    page = tmp_path / "page.md"
    page.write_text(f"```python\n{block.strip()}\n```\n")
    bases = faultmatrix.baselines(faultmatrix.all_examples(tmp_path))
    assert not bases[0].error, bases[0].error
    return {
        str(case).split(":", 2)[2]: faultmatrix.run_case(case, tmp_path)
        for case in faultmatrix.cases(bases)
    }


def test_catches_sibling_left_running_by_gather(tmp_path: Path) -> None:
    outcomes = _outcomes(
        tmp_path,
        """
import asyncio

from examples.services import fetch_user, fetch_widget


async def main() -> None:
    await asyncio.gather(fetch_user(1), fetch_widget("chart"))


asyncio.run(main())
""",
    )
    assert set(outcomes) == {"fail-call-0:asyncio", "fail-call-1:asyncio"}
    # user(1) fails at 100 ms while widget(chart) still has 100 ms to go.
    assert any("task left pending" in p for p in outcomes["fail-call-0:asyncio"].problems)
    # widget(chart) fails last: nothing is left behind, the error reaches the caller.
    assert outcomes["fail-call-1:asyncio"].problems == []
    assert outcomes["fail-call-1:asyncio"].raised is not None


def test_catches_error_raised_while_handling_a_failure(tmp_path: Path) -> None:
    outcomes = _outcomes(
        tmp_path,
        """
import asyncio

from examples.services import fetch_user


async def main() -> None:
    [user] = await asyncio.gather(fetch_user(1), return_exceptions=True)
    print(user.name)


asyncio.run(main())
""",
    )
    [problem] = outcomes["fail-call-0:asyncio"].problems
    assert problem.startswith("the block raised AttributeError")


def test_catches_write_that_does_not_wait_for_auth(tmp_path: Path) -> None:
    outcomes = _outcomes(
        tmp_path,
        """
import asyncio

from examples.services import Database, auth
from examples.timeline import Timeline


async def main() -> None:
    db = Database()
    with Timeline():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(auth("session-ada"))
            tg.create_task(db.update_profile(1, {"name": "Ada"}))


asyncio.run(main())
""",
    )
    [problem] = outcomes["fail-call-0:asyncio"].problems
    assert "db.update_profile(1) committed at 20 ms although auth failed" in problem


def test_stall_inside_and_outside_a_deadline(tmp_path: Path) -> None:
    outcomes = _outcomes(
        tmp_path,
        """
import anyio

from examples.services import fetch_posts, fetch_user


async def main() -> None:
    with anyio.move_on_after(0.5):
        await fetch_user(1)
    await fetch_posts(1)


anyio.run(main)
""",
    )
    for clock in ("asyncio", "trio"):
        inside = outcomes[f"stall-call-0:{clock}"]
        assert (inside.handled, inside.hung, inside.problems) == (True, False, [])
        outside = outcomes[f"stall-call-1:{clock}"]
        assert outside.hung


def test_a_hung_stall_run_names_the_call_and_the_deadlines_that_miss_it(tmp_path: Path) -> None:
    outcomes = _outcomes(
        tmp_path,
        """
import anyio

from examples.services import fetch_posts, fetch_user
from examples.timeline import Timeline


async def main() -> None:
    with Timeline():
        with anyio.move_on_after(0.5):
            await fetch_user(1)
        await fetch_posts(1)


anyio.run(main)
""",
    )
    for clock in ("asyncio", "trio"):
        assert outcomes[f"stall-call-0:{clock}"].hung_reason is None
        reason = outcomes[f"stall-call-1:{clock}"].hung_reason
        assert reason is not None
        # The page's line of the deadline (the fence is line 1), and the hung call.
        assert "call 1, posts(1)," in reason
        assert "line 10: `with anyio.move_on_after(0.5):`" in reason


def test_catches_coroutine_never_awaited_on_the_failure_path(tmp_path: Path) -> None:
    outcomes = _outcomes(
        tmp_path,
        """
import asyncio

from examples.services import auth, fetch_config


async def main() -> None:
    config = fetch_config()
    await auth("session-ada")
    await config


asyncio.run(main())
""",
    )
    # auth fails: the config coroutine was created but never awaited.
    assert any("never awaited" in p for p in outcomes["fail-call-0:asyncio"].problems)
    # config fails: it was awaited; the failure reaches the caller cleanly.
    assert outcomes["fail-call-1:asyncio"].problems == []
