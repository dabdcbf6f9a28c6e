"""Work shared by the workers of one pytest run (tests/perrun.py)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from tests import perrun


class Base:
    """A stand-in for pytest's TempPathFactory: only its base folder matters."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder

    def getbasetemp(self) -> Path:
        return self.folder


def worker(run: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> pytest.TempPathFactory:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", name)
    return cast(pytest.TempPathFactory, Base(run / f"popen-{name}"))


def test_the_first_worker_does_the_work_and_the_others_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def work(folder: Path) -> str:
        calls.append(folder)
        (folder / "built").write_text("site")
        return "result"

    assert perrun.once(worker(tmp_path, "gw0", monkeypatch), "build", work) == "result"
    assert perrun.once(worker(tmp_path, "gw1", monkeypatch), "build", work) == "result"
    assert calls == [tmp_path / "build"]
    assert (tmp_path / "build" / "built").read_text() == "site"


def test_work_that_raised_is_reported_by_the_others_not_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def work(folder: Path) -> str:
        calls.append("ran")
        raise RuntimeError("docs/index.md:3: broken link")

    with pytest.raises(RuntimeError, match="broken link"):
        perrun.once(worker(tmp_path, "gw0", monkeypatch), "build", work)
    with pytest.raises(perrun.SharedWorkFailed, match=r"failed in worker gw0.*broken link"):
        perrun.once(worker(tmp_path, "gw1", monkeypatch), "build", work)
    assert calls == ["ran"]


def test_a_skip_is_not_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def skip(folder: Path) -> str:
        pytest.skip("no Chromium")

    with pytest.raises(pytest.skip.Exception):
        perrun.once(worker(tmp_path, "gw0", monkeypatch), "build", skip)
    assert perrun.once(worker(tmp_path, "gw1", monkeypatch), "build", lambda _: "ok") == "ok"


def test_a_pytest_inside_a_worker_keeps_to_its_own_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It inherits PYTEST_XDIST_WORKER, but its base folder is no worker's.
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    own = cast(pytest.TempPathFactory, Base(tmp_path / "pytest-7"))
    assert perrun.run_folder(own) == tmp_path / "pytest-7"
    assert perrun.run_folder(worker(tmp_path, "gw0", monkeypatch)) == tmp_path
