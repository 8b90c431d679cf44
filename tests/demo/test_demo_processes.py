"""The demo app, its dependency and the load generator as real processes on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from redline.sidecars.adapter.formats import make_format
from tests.process import free_port, wait_port

REDLINE = [sys.executable, "-m", "redline.cli"]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*REDLINE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[int, Path, list[subprocess.Popen[str]]]]:
    app_port, payment_port = free_port(), free_port()
    access_log = tmp_path / "access.log"
    payment = _start("demo-app", "--role", "dependency", "--listen", f"127.0.0.1:{payment_port}")
    app = _start("demo-app", "--listen", f"127.0.0.1:{app_port}", "--access-log",
                 str(access_log), "--dependency", f"http://127.0.0.1:{payment_port}",
                 "--seed", "7")
    processes = [app, payment]
    try:
        wait_port(app_port)
        wait_port(payment_port)
        yield app_port, access_log, processes
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


def test_load_reaches_every_route_and_every_request_is_logged_once(
        shop: tuple[int, Path, list[subprocess.Popen[str]]]) -> None:
    app_port, access_log, processes = shop
    load = subprocess.run([*REDLINE, "demo-load", "--target", f"http://127.0.0.1:{app_port}",
                           "--rate", "200", "--concurrency", "8", "--duration", "4",
                           "--seed", "1"], check=False, capture_output=True, text=True, timeout=60)
    assert load.returncode == 0, load.stderr
    counts = dict(item.split("=") for item in load.stdout.split())
    total = int(counts.pop("requests"))
    assert 500 <= total <= 820  # ~200 req/s for 4 s; slow checkouts may cost a few
    assert "error" not in counts  # the app answered every request
    assert set(counts) <= {"200", "500", "502"}

    for proc in processes:  # SIGTERM: the demo app stops cleanly
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    events, errors = make_format("nginx").parse_block(access_log.read_text())
    assert errors == 0
    assert len(events) == total
    paths = {path for _, path, _, _, _ in events}
    assert {"/api/items", "/api/search", "/api/checkout"} <= paths
    assert any(p.startswith("/api/items/") for p in paths)
    assert all(seconds is not None and seconds >= 0 for _, _, _, seconds, _ in events)


def test_bad_flags_are_named() -> None:
    load = subprocess.run([*REDLINE, "demo-load", "--target", "ftp://x", "--duration", "1"],
                          check=False, capture_output=True, text=True, timeout=30)
    assert load.returncode == 2
    assert "--target: expected http://HOST:PORT, got 'ftp://x'" in load.stderr
    app = subprocess.run([*REDLINE, "demo-app", "--access-log", os.devnull + "/nope/x.log"],
                         check=False, capture_output=True, text=True, timeout=30)
    assert app.returncode == 2
    assert "--access-log: cannot open" in app.stderr


def test_the_app_calls_the_grpc_inventory(tmp_path: Path) -> None:
    """The item route asks the inventory (GetStock: NOT_FOUND now and then -> 404), the
    checkout reserves (INTERNAL or UNAVAILABLE now and then -> 502), over real gRPC."""
    inventory_port, app_port = free_port(), free_port()
    inventory = _start("demo-app", "--role", "inventory", "--listen",
                       f"127.0.0.1:{inventory_port}", "--seed", "3")
    app = _start("demo-app", "--listen", f"127.0.0.1:{app_port}", "--grpc-dependency",
                 f"127.0.0.1:{inventory_port}", "--seed", "3")
    try:
        wait_port(inventory_port)
        wait_port(app_port)
        load = subprocess.run([*REDLINE, "demo-load", "--target", f"http://127.0.0.1:{app_port}",
                               "--rate", "150", "--duration", "3", "--seed", "2"],
                              check=False, capture_output=True, text=True, timeout=60)
        assert load.returncode == 0, load.stderr
        counts = dict(item.split("=") for item in load.stdout.split())
        assert int(counts.get("404", 0)) > 0, counts  # ~8% of ~135 item lookups
        assert set(counts) - {"requests"} <= {"200", "404", "500", "502"}, counts
        for proc in (app, inventory):  # SIGTERM: both stop cleanly
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
    finally:
        for proc in (app, inventory):
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)


def test_without_grpcio_the_grpc_roles_say_so(tmp_path: Path) -> None:
    """grpcio is not one of redline's run-time dependencies: where it is missing (here a
    `grpc` package that fails to import, first on the path), the gRPC parts stop with a clear
    error and the demo leaves its inventory out."""
    (tmp_path / "grpc").mkdir()
    (tmp_path / "grpc" / "__init__.py").write_text(
        'raise ImportError("No module named \'grpc\'")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for role in (("--role", "inventory"), ("--grpc-dependency", "127.0.0.1:1")):
        done = subprocess.run([*REDLINE, "demo-app", *role, "--listen",
                               f"127.0.0.1:{free_port()}"], check=False, capture_output=True,
                              text=True, timeout=30, env=env)
        assert done.returncode == 2, (role, done.stderr)
        assert "needs grpcio, but grpcio is not installed (pip install grpcio)" in done.stderr
        assert "Traceback" not in done.stderr
    check = subprocess.run([sys.executable, "-c", "from redline.demo import inventory; "
                            "print(inventory.available())"], check=False, capture_output=True,
                           text=True, timeout=30, env=env)
    assert check.stdout == "False\n", check.stderr


def test_the_inventory_is_planned_only_with_grpcio(tmp_path: Path) -> None:
    from redline.demo import topology

    ports = {name: 1000 + i for i, name in enumerate(topology.PORT_NAMES)}
    with_grpc = topology.redline_children(ports, tmp_path, grpc=True)
    without = topology.redline_children(ports, tmp_path, grpc=False)
    assert [c.name for c in with_grpc][:2] == ["inventory", "inventory-h2c"]
    h2c = with_grpc[1].argv
    assert h2c[h2c.index("--protocol") + 1] == "h2c"
    assert h2c[h2c.index("--service") + 1] == "inventory"
    app = next(c for c in with_grpc if c.name == "app").argv
    assert app[app.index("--grpc-dependency") + 1] == f"127.0.0.1:{ports['inventory_h2c']}"
    assert "inventory" not in [c.name for c in without]
    assert "--grpc-dependency" not in next(c for c in without if c.name == "app").argv
