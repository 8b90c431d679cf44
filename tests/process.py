"""A redline sidecar run as a real subprocess: ports from its JSON start-up log, /metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from prometheus_client.parser import text_string_to_metric_families

from redline.ports import free_port, wait_port

__all__ = ["SidecarProcess", "free_port", "wait_port"]


class SidecarProcess:
    def __init__(self, subcommand: str, *args: str, started: str,
                 env: dict[str, str] | None = None, service: bool = True,
                 service_name: str = "shop", prefix: Sequence[str] = ()) -> None:
        """`prefix`: a command the process runs under (e.g. setpriv with fewer privileges)."""
        sidecar = ["--admin", "127.0.0.1:0", "--service", service_name] if service else []
        command = [*prefix, sys.executable, "-m", "redline.cli", subcommand, *sidecar, *args]
        self.proc = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env={**os.environ, **(env or {})})
        self.logs: list[dict[str, object]] = []
        self._started_message = started
        self._started = threading.Event()
        self._reader = threading.Thread(target=self._read_logs, daemon=True)
        self._reader.start()
        if not self._started.wait(60):  # bounded: a busy machine starts Python slowly
            self.stop()
            raise RuntimeError(f"{subcommand} did not start: {self.logs}")
        self.started = next(e for e in self.logs if e.get("msg") == started)
        self.admin_port = int(str(self.started["admin"]))

    def _read_logs(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"msg": line.rstrip()}
            self.logs.append(entry)
            if entry.get("msg") == self._started_message:
                self._started.set()

    def admin(self, path: str, accept: str = "text/plain") -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}",
                                         headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def metrics_text(self, accept: str = "text/plain") -> str:
        return self.admin("/metrics", accept)[1]

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        return [(s.name, s.labels, s.value)
                for family in text_string_to_metric_families(self.metrics_text())
                for s in family.samples]

    def value(self, metric: str, **labels: str) -> float:
        return sum(value for name, sample_labels, value in self.samples()
                   if name == metric and all(sample_labels.get(k) == v
                                             for k, v in labels.items()))

    def requests_recorded(self, **labels: str) -> float:
        return self.value("http_server_request_duration_seconds_count", **labels)

    def wait_value(self, metric: str, expected: float, timeout: float = 20.0,
                   **labels: str) -> float:
        """Wait (bounded; generous for a busy machine, it returns as soon as the value is
        there) until a metric reaches `expected`; returns what it last was."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.value(metric, **labels)
            if seen >= expected or time.monotonic() > deadline:
                return seen
            time.sleep(0.02)

    def wait_recorded(self, expected: float, timeout: float = 20.0, **labels: str) -> float:
        return self.wait_value("http_server_request_duration_seconds_count", expected,
                               timeout, **labels)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code
