"""`redline alerts --out` names what it writes (#15 item 10); every command's help is checked
in tests/test_help.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_out_names_every_file_written_on_stderr(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "redline.cli", "alerts", "--slo",
         str(REPO / "deploy/prometheus/slo.yaml"), "--out", str(tmp_path / "rules")],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    written = sorted(str(p) for p in (tmp_path / "rules").iterdir())
    assert len(written) == 4
    assert sorted(result.stderr.splitlines()) == [f"wrote {path}" for path in written]


def test_without_out_the_rules_go_to_stdout_and_nothing_is_written(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "redline.cli", "alerts"],
                            capture_output=True, text=True, timeout=60, check=False,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "groups:" in result.stdout and "wrote" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_out_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the directory would go\n")
    result = subprocess.run([sys.executable, "-m", "redline.cli", "alerts", "--out", "taken"],
                            capture_output=True, text=True, timeout=60, check=False,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("redline: --out taken: cannot write taken/")
    assert "Traceback" not in result.stderr
