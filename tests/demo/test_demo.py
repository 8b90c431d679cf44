"""`redline demo` end to end: every part started for real, `redline stat` against its
Prometheus while it runs, the view without Prometheus, and no process left afterwards."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

REDLINE = [sys.executable, "-m", "redline.cli"]
ROUTES = ("/api/items", "/api/items/{id}", "/api/search", "/api/checkout")
GRPC_METHODS = ("/demo.Inventory/GetStock", "/demo.Inventory/Reserve")


class DemoRun:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([*REDLINE, "demo", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the demo's output:\n{''.join(self.lines)}")

    def finish(self, timeout: float) -> str:
        try:
            assert self.proc.wait(timeout) == 0, "".join(self.lines)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return "".join(self.lines)

    def kill(self) -> None:
        """SIGKILL: the demo gets no chance to stop anything."""
        self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def child_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r" pid (\d+) ", "".join(self.lines))]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _stat(prometheus: str, *args: str) -> str:
    done = subprocess.run([*REDLINE, "stat", "--prometheus", prometheus, "--window", "15s",
                           *args], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _rows(table: str) -> dict[tuple[str, str], dict[str, str]]:
    """(SERVICE, ROUTE) -> the row's cells by column (a gRPC method's ROUTE is its path)."""
    header, *lines = table.splitlines()
    rows = {}
    for line in lines:
        cells = dict(zip(header.split(), line.split(), strict=True))
        rows[(cells["SERVICE"], cells["ROUTE"])] = cells
    return rows


def test_demo_with_prometheus_stat_sees_every_route_and_nothing_is_left(tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is not installed; `make test` installs it")
    demo = DemoRun("--duration", "30", "--refresh", "5", "--rate", "80",
                   "--workdir", str(tmp_path))
    prometheus = demo.wait_for(r"source: Prometheus at (http://127\.0\.0\.1:\d+)", 60)[1]
    pids = demo.child_pids()
    # the app, payments, the inventory, three ambassadors, adapter, node exporter, Prometheus
    assert len(pids) >= 9
    demo.wait_for(r"redline demo\s+2[0-9]s / 30s", 40)  # 20 s of traffic in Prometheus

    routes = _rows(_stat(prometheus, "--by", "route"))
    for service in ("checkout", "checkout-log"):  # the ambassador's view and the adapter's
        for route in ROUTES:
            row = routes[(service, route)]
            assert float(row["RPS"]) > 0 and row["PROTOCOL"] == "http", (service, route, routes)
            if route == "/api/checkout":
                assert float(row["SUCCESS"].rstrip("%")) < 100, routes  # fails a few percent
    # The app's gRPC calls, seen by the ambassador in front of the inventory
    for method in GRPC_METHODS:
        row = routes[("inventory", method)]
        assert float(row["RPS"]) > 0 and row["PROTOCOL"] == "grpc", (method, routes)
    # The node exporter runs the cgroups collector too (this machine's cgroups are no
    # containers, so `redline stat containers` has no rows: the series are there by id).
    url = f"{prometheus}/api/v1/query?query=count(container_cpu_usage_seconds_total)"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert float(json.loads(response.read())["data"]["result"][0]["value"][1]) >= 1
    nodes = _stat(prometheus, "nodes").splitlines()
    assert len(nodes) == 2, nodes
    node = dict(zip(nodes[0].split(), nodes[1].split(), strict=True))
    assert node["MEM"].endswith("%") and node["FS"].endswith("%")

    output = demo.finish(timeout=60)
    assert "every process it started has stopped" in output
    assert not [pid for pid in pids if _alive(pid)]
    # It waited for Prometheus instead of showing its start-up 503 (or stat's flag names).
    assert "waiting for Prometheus to be ready" in output
    assert "need Prometheus" not in output and "--prometheus" not in output
    # Every alert kind fires within the run (the demo's SLO is tight for that).
    last = output.rsplit("-" * 78, 1)[1]
    for alert in ("RedlineAvailabilityBurnRate", "RedlineLatencyBurnRate"):
        for severity in ("page", "ticket"):
            assert re.search(rf"firing\s+{alert} .*severity={severity}", last), last
    # What an HPA on 20 requests/s per pod would want for the 80 requests/s the test sends.
    wanted = re.search(r"checkout: 1 replica now, the HPA would want (\d+) \(1-10\); "
                       r"requests_per_second_per_pod ([\d.]+) \(target 20 per pod\)", last)
    assert wanted, last
    # The rate is shown to 3 significant digits ("80" may be 80.04, for which the HPA wants 5):
    # the replicas wanted are those of a rate within half a unit of its last digit shown.
    shown = float(wanted[2])
    half_unit = 0.5 * 10.0 ** (math.floor(math.log10(shown)) - 2) if shown else 0.0
    assert 3 <= int(wanted[1]) <= 5
    assert int(wanted[1]) in {math.ceil((shown - half_unit) / 20),
                              math.ceil((shown + half_unit) / 20)}, wanted[0]
    assert (tmp_path / "grafana" / "dashboards").is_dir()
    assert sorted(p.name for p in (tmp_path / "rules").iterdir()) == [
        "redline-health.rules.yaml", "redline-red.rules.yaml", "redline-slo.rules.yaml",
        "redline-use.rules.yaml"]


def test_demo_without_prometheus_reads_the_sidecars(tmp_path: Path) -> None:
    empty_path = tmp_path / "bin"
    empty_path.mkdir()  # nothing on PATH: no prometheus, no alertmanager
    demo = DemoRun("--duration", "10", "--refresh", "4", "--workdir", str(tmp_path / "w"),
                   env={**os.environ, "PATH": str(empty_path)})
    output = demo.finish(timeout=60)
    assert "prometheus     not installed" in output
    last = output.rsplit("-" * 78, 1)[1]
    assert "source: the sidecars' /metrics" in last
    red = last.split("RED per service and route\n", 1)[1].split("\n\n", 1)[0]
    rows = _rows(red)
    assert {route for service, route in rows if service == "checkout"} >= {
        "/api/items", "/api/items/{id}"}  # the busiest routes, certain in 10 s
    assert ("inventory", "/demo.Inventory/GetStock") in rows  # called by /api/items/{id}
    assert any(service == "checkout-log" for service, _ in rows)
    use = last.split("USE per node\n", 1)[1].split("\n\n", 1)[0].splitlines()
    header, row = use[0].split(), use[1].split()
    assert row[header.index("MEM")].endswith("%")
    assert "need Prometheus" in last
    assert not [pid for pid in demo.child_pids() if _alive(pid)]


def test_demo_killed_outright_takes_its_children_with_it(tmp_path: Path) -> None:
    """SIGKILL gives the demo no chance to stop its children (each in a session of its own):
    the kernel's parent-death signal (setpriv --pdeathsig) must end them instead."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    only_setpriv = tmp_path / "bin"
    only_setpriv.mkdir()  # no prometheus: the quickest demo; setpriv still found
    (only_setpriv / "setpriv").symlink_to(str(shutil.which("setpriv")))
    demo = DemoRun("--duration", "60", "--workdir", str(tmp_path / "w"),
                   env={**os.environ, "PATH": str(only_setpriv)})
    try:
        demo.wait_for(r"source: the sidecars", timeout=60)  # every child started
        children = demo.child_pids()
        assert children and all(_alive(pid) for pid in children)
    finally:
        demo.kill()
    deadline = time.monotonic() + 20  # the ambassadors drain first (--drain-delay)
    while [pid for pid in children if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    names = {int(pid): name for name, pid in re.findall(r"(\S+) +pid (\d+) ", "".join(demo.lines))}
    assert not [(names.get(pid), pid) for pid in children if _alive(pid)]
