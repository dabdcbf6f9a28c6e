"""The helpers readers copy work copied alone, with only the dependencies they declare.

Each helper lists what it needs in a PEP 723 block at its top
(`# /// script` ... `# dependencies = [...]` ... `# ///`). For each one this
test creates an empty folder and a fresh virtual environment, installs
exactly the declared dependencies from the package index, copies the file
in alone, and runs a small program that uses it as its docstring says. A
helper that imports `examples.services`, or needs a library it does not
declare, fails here with ModuleNotFoundError.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.harness import ROOT

# The regular expression the PEP gives for reading its metadata blocks.
_BLOCK = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")


def script_metadata(path: Path) -> dict:
    """The `script` block of a file's PEP 723 metadata, parsed as TOML."""
    blocks = [m for m in _BLOCK.finditer(path.read_text()) if m["type"] == "script"]
    name = path.relative_to(ROOT)
    assert blocks, (
        f"{name}:1: no PEP 723 block; start the file with `# /// script`, "
        '`# dependencies = ["anyio>=4.15"]` (what it imports) and `# ///`'
    )
    assert len(blocks) == 1, f"{name}: {len(blocks)} `# /// script` blocks, not one"
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in blocks[0]["content"].splitlines(keepends=True)
    )
    return tomllib.loads(content)


# A few lines per helper, using it the way its docstring shows, with what
# each prints.
SMOKE = {
    "settle.py": (
        """
        import anyio
        from settle import Failed, Ok, settle, value_or


        async def answer() -> int:
            await anyio.sleep(0.01)
            return 42


        async def broken() -> int:
            raise ValueError("no answer")


        async def main() -> None:
            first, second = await settle(answer(), broken())
            print(first == Ok(42), isinstance(second, Failed), value_or(second, 0))


        anyio.run(main)
        """,
        "True True 0",
    ),
    "after_response.py": (
        """
        import anyio
        from after_response import AfterResponse

        ended = []


        async def audit(user_id: int) -> None:
            await anyio.sleep(0.01)
            ended.append(user_id)


        async def main() -> None:
            async with AfterResponse(drain_seconds=1) as after:
                after.start(audit, 1, context={"path": "/orders"})
                print(len(ended), end=" ")
            print(len(ended), after.finished, after.cancelled)


        anyio.run(main)
        """,
        "0 1 1 []",
    ),
    "hedge.py": (
        """
        import anyio
        from hedge import first_success, hedged

        calls = []


        async def replica(name: str, seconds: float) -> str:
            calls.append(name)
            await anyio.sleep(seconds)
            return name


        async def main() -> None:
            fastest = await first_success(
                lambda: replica("slow", 0.2), lambda: replica("fast", 0.01)
            )
            quick = await hedged(
                lambda: replica("primary", 0.01), lambda: replica("backup", 0.01), delay=0.1
            )
            print(fastest, quick, len(calls))


        anyio.run(main)
        """,
        "fast primary 3",
    ),
    "request_cache.py": (
        """
        import anyio
        from request_cache import request_cached, request_scope

        queries = []


        @request_cached
        async def get_user(user_id: int) -> str:
            queries.append(user_id)
            await anyio.sleep(0.01)
            return f"user {user_id}"


        async def main() -> None:
            async with request_scope():
                async with anyio.create_task_group() as tg:
                    for _ in range(3):
                        tg.start_soon(get_user, 1)
                print(await get_user(1), len(queries))


        anyio.run(main)
        """,
        "user 1 1",
    ),
    "shared_cache.py": (
        """
        import anyio
        from shared_cache import SharedCache

        queries = []


        async def load_config() -> str:
            queries.append("config")
            await anyio.sleep(0.01)
            return "dark"


        async def main() -> None:
            async with SharedCache(ttl=30) as cache:
                async with anyio.create_task_group() as tg:
                    for _ in range(3):
                        tg.start_soon(cache.get, "theme", load_config)
                print(await cache.get("theme", load_config), len(queries))


        anyio.run(main)
        """,
        "dark 1",
    ),
    "streaming.py": (
        """
        import anyio
        from streaming import SendRecorder


        async def app(scope, receive, send) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"head", "more_body": True})
            await anyio.sleep(0.05)
            await send({"type": "http.response.body", "body": b"tail", "more_body": False})


        async def main() -> None:
            sent = []

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message) -> None:
                sent.append(message["type"])

            recorder = SendRecorder(app)
            await recorder({"type": "http", "method": "GET", "path": "/"}, receive, send)
            print(len(sent), recorder.first_byte_ms < recorder.last_part_ms)


        anyio.run(main)
        """,
        "3 True",
    ),
}


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_helper_runs_copied_alone(name: str, tmp_path: Path) -> None:
    helper = ROOT / "examples" / name
    metadata = script_metadata(helper)
    dependencies = metadata.get("dependencies", [])

    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(environment)], check=True)
    python = environment / "bin" / "python"
    if dependencies:
        install = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(python),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *dependencies,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert install.returncode == 0, (
            f"examples/{name}: installing its declared dependencies {dependencies} "
            f"failed:\n{install.stderr}"
        )

    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(helper, folder / name)
    (folder / "smoke.py").write_text(textwrap.dedent(SMOKE[name][0]).lstrip())
    # -E -s: no PYTHONPATH and no user site, so only the venv and the folder count.
    result = subprocess.run(
        [str(python), "-E", "-s", "smoke.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"examples/{name}, copied alone into an empty folder with only {dependencies} "
        f"installed, does not run; it must import only the standard library and what its "
        f"`# /// script` block declares:\n{result.stderr}"
    )
    assert result.stdout.strip() == SMOKE[name][1], (
        f"examples/{name} copied alone printed {result.stdout.strip()!r}"
    )
