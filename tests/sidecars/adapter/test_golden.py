"""Golden tests: sample logs of each format through `redline adapter --once`, compared with the
expected exposition (reviewed by hand; regenerate only when a change is meant)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import promtool_check_metrics

GOLDEN = Path(__file__).parent / "golden"
CASES = [line.split("\t") for line in (GOLDEN / "cases.txt").read_text().splitlines()
         if line and not line.startswith("#")]


def adapter_once(log: str, *flags: str) -> bytes:
    result = subprocess.run(
        [sys.executable, "-m", "redline.cli", "adapter", "--service", "shop",
         "--access-log", log, *flags, "--once"],
        cwd=GOLDEN, capture_output=True, timeout=60, check=True)
    return result.stdout


@pytest.mark.parametrize(("log", "expected", "flags"), CASES, ids=[c[0] for c in CASES])
def test_golden_exposition(log: str, expected: str, flags: str) -> None:
    output = adapter_once(log, flags)
    lines = [line for line in output.decode().splitlines()
             if not line.startswith("redline_build_info{")]
    assert lines == (GOLDEN / expected).read_text().splitlines()
    promtool_check_metrics(output)
