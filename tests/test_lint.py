"""The project's own Python passes ruff, as configured in pyproject.toml."""

from __future__ import annotations

import subprocess

from tests import harness


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return harness.ruff(*args, source="")


def test_ruff_check() -> None:
    result = ruff("check", "--output-format=concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
