"""The project's own Python passes ruff, as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_ruff_check() -> None:
    result = ruff("check", "--output-format=concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
