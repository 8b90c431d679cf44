"""A central store for many clusters, as real processes on 127.0.0.1: VictoriaMetrics single-node
(Prometheus' query API, remote_write and import endpoints), `vmalert` evaluating rule files against
it, and a notifier that keeps what vmalert sends. Used by the tests and by
benchmarks/bench_rules.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from redline.ports import free_port, wait_port


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not installed; `make test` installs Debian's "
                                f"victoria-metrics package, which has it")
    return path


def get_json(url: str, timeout: float = 30) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class _Server:
    """A process that listens on `self.port`, stopped by its own pid."""

    def __init__(self, command: Sequence[str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        with log.open("wb") as output:
            self.proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_port(port, timeout=30, still_starting=lambda: self.proc.poll() is None)
        except (TimeoutError, ChildProcessError) as exc:
            self.stop()
            raise RuntimeError(f"{command[0]} did not start: {log.read_text()[-2000:]}") from exc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as response:
            text: str = response.read().decode()
        return text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class VictoriaMetrics(_Server):
    """Single-node VictoriaMetrics. Queries see samples up to 1 s old (the default hides the
    last 30 s, for remote writers that lag) and are not cached between calls. The default
    -search.maxQueryLen (16 KB): redline's rules no longer list the SLO services, and at
    1,000 services the longest is 425 bytes (they were 8-83 KB, docs/scale.md)."""

    def __init__(self, directory: Path) -> None:
        port = free_port()
        super().__init__([binary("victoria-metrics"), f"-httpListenAddr=127.0.0.1:{port}",
                          f"-storageDataPath={directory / 'vm-data'}",
                          "-search.latencyOffset=1s", "-search.disableCache",
                          "-loggerLevel=ERROR"], port, directory / "victoria-metrics.log")

    @property
    def remote_write(self) -> str:
        return f"{self.url}/api/v1/write"

    def query(self, expr: str, time: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr, **({"time": f"{time:.3f}"} if time is not None else {})}
        body = get_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode(params))
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def import_prometheus(self, text: bytes) -> None:
        """Samples in the text exposition format, with timestamps in milliseconds."""
        request = urllib.request.Request(f"{self.url}/api/v1/import/prometheus", data=text,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=600) as response:
            assert response.status == 204, response.status

    def flush(self) -> None:
        """Make what was imported searchable now (it is, within a second or so, anyway)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=60):
            pass


class Notifier(ThreadingHTTPServer):
    """Alertmanager's POST /api/v2/alerts, kept: what vmalert sent."""

    daemon_threads = True

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        notifier = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                notifier.received.extend(json.loads(body or b"[]"))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class VMAlert(_Server):
    """vmalert: `rule_files` against VictoriaMetrics, recording results written back to it."""

    def __init__(self, directory: Path, rule_files: Sequence[Path], vm: VictoriaMetrics,
                 notifier: str, interval: str = "2s") -> None:
        port = free_port()
        super().__init__([binary("vmalert"), f"-httpListenAddr=127.0.0.1:{port}",
                          f"-datasource.url={vm.url}", f"-remoteWrite.url={vm.url}",
                          f"-notifier.url={notifier}", f"-evaluationInterval={interval}",
                          "-remoteWrite.flushInterval=500ms", "-loggerLevel=ERROR",
                          *(f"-rule={path}" for path in rule_files)],
                         port, directory / "vmalert.log")

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts pending or firing now."""
        alerts: list[dict[str, Any]] = get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return alerts

    def groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = get_json(f"{self.url}/api/v1/rules")["data"]["groups"]
        return groups
