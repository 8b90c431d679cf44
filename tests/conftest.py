"""Shared test helpers: the real promtool, fresh registries."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def promtool_path() -> str:
    path = shutil.which("promtool")
    if path is None:  # `make test` installs Debian's prometheus package; never skip silently.
        pytest.fail("promtool is not installed; run `make test`, which installs it")
    return path


def promtool_check_metrics(exposition: bytes) -> None:
    """Fail with promtool's own words when the exposition breaks a rule or a convention."""
    result = subprocess.run(
        [promtool_path(), "check", "metrics"], input=exposition, capture_output=True,
        timeout=60, check=False,
    )
    problems = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and not problems.strip(), problems
