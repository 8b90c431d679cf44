"""`redline dashboards` run where a user runs it: outside the repository, without --out
(#15 item 10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from redline.dashboards.command import dashboards

FILES = [*(f"grafana/dashboards/{name}" for name in dashboards()),
         "grafana/provisioning/dashboards/redline.yaml"]


def redline_dashboards(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "redline.cli", "dashboards", *args],
                          capture_output=True, text=True, timeout=60, check=False, cwd=cwd)


def test_without_out_they_go_to_grafana_in_the_current_directory(tmp_path: Path) -> None:
    result = redline_dashboards(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"wrote {name}" for name in FILES]
    assert [p.name for p in tmp_path.iterdir()] == ["grafana"]  # no ./deploy/grafana
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(FILES)


def test_out_names_every_file_written(tmp_path: Path) -> None:
    result = redline_dashboards(tmp_path, "--out", "somewhere/else")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"wrote {name.replace('grafana/', 'somewhere/else/', 1)}" for name in FILES]
    assert (tmp_path / "somewhere/else/dashboards/redline-red-service.json").is_file()


def test_an_unwritable_out_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the directory would go\n")
    result = redline_dashboards(tmp_path, "--out", "taken")
    assert result.returncode == 2
    assert result.stderr.startswith("redline: --out taken: cannot write taken/dashboards/")
    assert "Traceback" not in result.stderr
