"""`redline demo`: start the whole toolkit on loopback, show RED and USE live, clean up.

The plan (redline/demo/topology.py), the numbers (direct.py, or Prometheus through redline/stat)
and the screen (view.py) are pure; this module starts processes, polls and prints.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

import yaml

from redline.alerts.spec import load_spec
from redline.autoscale.hpa import desired_replicas
from redline.autoscale.model import Scaling
from redline.autoscale.objects import scaled
from redline.autoscale.replay import current_values
from redline.config import ConfigError
from redline.demo import direct, inventory, topology
from redline.demo.load import LoadResult, run_load
from redline.demo.view import Screen, render
from redline.ports import free_ports, wait_port
from redline.queries import DEFAULT
from redline.stat import command as stat

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
WINDOW = "20s"  # rate window when reading Prometheus (scraped every 2 s)


class Children:
    """The processes the demo started; `stop` ends every one of them, last started first."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[topology.Child, subprocess.Popen[bytes]]] = []

    def start(self, child: topology.Child) -> subprocess.Popen[bytes]:
        log_path = self.logs / f"{child.name}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - the child owns it
        # A session of its own: Ctrl-C reaches only the demo, which then stops children in order.
        # That also means a demo killed outright (SIGKILL, a test runner dying) would leave them
        # running with their ports held: util-linux's setpriv asks the kernel to send each one
        # SIGTERM when the thread that started it (the demo's main thread) dies.
        setpriv = shutil.which("setpriv")
        argv = [setpriv, "--pdeathsig", "TERM", "--", *child.argv] if setpriv else child.argv
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.running.append((child, proc))
        try:
            wait_port(child.port, START_TIMEOUT_S, still_starting=lambda: proc.poll() is None)
        except ChildProcessError:
            raise ConfigError(f"demo: {child.name} exited with code {proc.returncode} at "
                              f"start; see {log_path}") from None
        except TimeoutError:
            raise ConfigError(f"demo: {child.name} did not listen on 127.0.0.1:{child.port} "
                              f"within {START_TIMEOUT_S:.0f} s; see {log_path}") from None
        return proc

    def stop(self) -> None:
        for _, proc in reversed(self.running):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for _, proc in self.running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as response:
        return str(response.read().decode("utf-8", "replace"))


def _generate(workdir: Path) -> None:
    """The rules Prometheus evaluates and the dashboards to import, by redline's own commands."""
    (workdir / "slo.yaml").write_text(topology.DEMO_SLO)
    # Tiles at the demo's evaluation interval: a demo runs minutes, hourly tiles would come
    # too late for its ticket alerts and its error budget.
    for args in (("alerts", "--slo", str(workdir / "slo.yaml"), "--out", str(workdir / "rules"),
                  "--tile-interval", topology.EVALUATION_INTERVAL),
                 ("dashboards", "--out", str(workdir / "grafana"))):
        done = subprocess.run([sys.executable, "-m", "redline.cli", *args], check=False,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ConfigError(f"demo: `redline {args[0]}` failed: {done.stderr.strip()}")


class Measure:
    """Where the screen's numbers come from: Prometheus when it runs, else the /metrics."""

    def __init__(self, children: list[topology.Child], prometheus: str | None,
                 scaled: list[tuple[str, Scaling]] | None = None) -> None:
        self.prometheus = prometheus
        self.scaled = scaled or []
        self.targets = [f"127.0.0.1:{c.port}" for c in children if c.scrape]
        self.previous: direct.Snapshot | None = None

    def fill(self, screen: Screen) -> None:
        if self.prometheus is not None:
            self._from_prometheus(screen, self.prometheus)
        else:
            self._direct(screen)

    def _direct(self, screen: Screen) -> None:
        texts = {}
        for target in self.targets:
            with contextlib.suppress(OSError):
                texts[target] = _fetch(f"http://{target}/metrics")
        snapshot = direct.parse(time.monotonic(), texts)
        if self.previous is not None:
            screen.red = direct.red_rows(self.previous, snapshot)
            screen.use = direct.use_rows(self.previous, snapshot)
        self.previous = snapshot

    def _from_prometheus(self, screen: Screen, url: str) -> None:
        try:
            red, _ = stat.red(stat.query, url, WINDOW, (), DEFAULT, by_route=True)
            use = {column: stat.query(url, expr)
                   for column, expr in stat.use_queries(WINDOW).items()}
            alerts = json.loads(_fetch(f"{url}/api/v1/alerts"))["data"]["alerts"]
            screen.scaling = [self._scaling_line(service, scaling, url)
                              for service, scaling in self.scaled]
        except (ConfigError, OSError, ValueError, KeyError) as exc:
            # stat's errors name its --prometheus flag, which the demo does not have.
            screen.note = f"Prometheus: {str(exc).removeprefix('--prometheus: ')}"
            return
        screen.red = red
        screen.use = stat.collect(use, ("instance",))
        screen.alerts = sorted(
            f"{a['state']:8} {a['labels'].get('alertname')} "
            + " ".join(f"{k}={v}" for k, v in sorted(a["labels"].items())
                       if k not in ("alertname", "__name__"))
            for a in alerts)

    @staticmethod
    def _scaling_line(service: str, scaling: Scaling, url: str) -> str:
        """The demo runs one replica of the app: what the HPA would make of it now."""
        values = current_values(service, scaling, url)
        wanted = desired_replicas(scaling, values, current=1)
        seen = ", ".join(
            f"{target.key} {values[target.key]:.3g} "
            f"(target {target.value:g}{' per pod' if target.per_pod else ''})"
            for target in scaling.targets if target.key in values)
        return (f"{service}: 1 replica now, the HPA would want {wanted} "
                f"({scaling.min_replicas}-{scaling.max_replicas}); {seen or 'no data yet'}")


def _show(frame: str, out: IO[str]) -> None:
    if out.isatty():
        out.write("\x1b[H\x1b[2J")  # redraw in place
    else:
        out.write("-" * 78 + "\n")
    out.write(frame)
    out.flush()


def run_demo(duration: float, refresh: float, rate: float, workdir: Path,
             stop: threading.Event, out: IO[str] = sys.stdout) -> int:
    """Run until `duration` has passed, `stop` is set (the command sets it on SIGTERM) or
    Ctrl-C; then stop every child."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (workdir / "access.log").touch()
    ports = dict(zip(topology.PORT_NAMES, free_ports(len(topology.PORT_NAMES)), strict=True))
    plan = topology.redline_children(ports, workdir, cgroups=Path("/sys/fs/cgroup").is_dir(),
                                     grpc=inventory.available())
    children = Children(logs)
    load = LoadResult()
    loader: threading.Thread | None = None
    try:
        for child in plan:
            children.start(child)
        prometheus_url = _start_prometheus(children, plan, ports, workdir, out)
        out.write(_started(children, ports, workdir, prometheus_url))
        out.flush()
        loader = threading.Thread(target=run_load, daemon=True, kwargs={
            "target": f"http://127.0.0.1:{ports['ambassador']}", "rate": rate,
            "concurrency": 8, "duration": duration, "stop": stop, "result": load})
        loader.start()
        scaled_services = (scaled(load_spec(workdir / "slo.yaml"))
                           if prometheus_url else [])
        measure = Measure(plan, prometheus_url, scaled_services)
        source = f"Prometheus at {prometheus_url}" if prometheus_url else "the sidecars' /metrics"
        started = time.monotonic()
        while not stop.is_set():
            elapsed = time.monotonic() - started
            screen = Screen(elapsed, duration, source, load=dict(load.statuses))
            measure.fill(screen)
            _show(render(screen), out)
            if elapsed >= duration:
                break
            stop.wait(min(refresh, max(0.0, duration - elapsed)))
    except KeyboardInterrupt:
        out.write("\ninterrupted\n")
    finally:
        stop.set()
        if loader is not None:
            loader.join(timeout=STOP_TIMEOUT_S)
        children.stop()
    out.write(_finished(workdir, generated=(workdir / "rules").is_dir()))
    return 0


def _start_prometheus(children: Children, plan: list[topology.Child], ports: dict[str, int],
                      workdir: Path, out: IO[str]) -> str | None:
    """Prometheus (and Alertmanager) with redline's rules, when installed; their URL or None."""
    prometheus_bin = shutil.which("prometheus")
    if prometheus_bin is None:
        return None
    alertmanager_bin = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    _generate(workdir)
    alertmanager_port = None
    if alertmanager_bin:
        alertmanager_port = ports["alertmanager"]
        (workdir / "alertmanager.yml").write_text(topology.ALERTMANAGER_CONFIG)
        children.start(topology.alertmanager_child(alertmanager_bin, ports, workdir))
    config = topology.prometheus_config(plan, workdir, alertmanager_port)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    children.start(topology.prometheus_child(prometheus_bin, ports, workdir))
    url = f"http://127.0.0.1:{ports['prometheus']}"
    _wait_ready(url, out)
    return url


def _wait_ready(prometheus: str, out: IO[str]) -> None:
    """Prometheus listens before it is ready (it replays its WAL and loads its rules first) and
    answers 503 meanwhile: the first screen waits for it instead of showing that error."""
    out.write("redline demo: waiting for Prometheus to be ready...\n")
    out.flush()
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT_S:
        with contextlib.suppress(OSError):
            _fetch(f"{prometheus}/-/ready")
            out.write(f"redline demo: Prometheus ready after {time.monotonic() - started:.1f} s\n")
            return
        time.sleep(0.2)
    raise ConfigError(f"demo: Prometheus at {prometheus} was not ready within "
                      f"{START_TIMEOUT_S:.0f} s; see its log in the work directory")


def _started(children: Children, ports: dict[str, int], workdir: Path,
             prometheus_url: str | None) -> str:
    lines = ["redline demo: started (every process on 127.0.0.1; stops at the end)"]
    for child, proc in children.running:
        lines.append(f"  {child.name:14} pid {proc.pid:<8} http://127.0.0.1:{child.port}"
                     + ("/metrics" if child.scrape else ""))
    lines.append(f"  try it:        curl http://127.0.0.1:{ports['ambassador']}/api/items")
    if prometheus_url is None:
        lines.append("  prometheus     not installed: reading the sidecars' /metrics instead "
                     "(apt-get install prometheus for rules and alerts)")
    if not inventory.available():
        lines.append(f"  inventory      not started: the gRPC dependency needs grpcio, but "
                     f"{inventory.MISSING}")
    lines.append(f"  work directory {workdir} (logs/, access.log)")
    return "\n".join(lines) + "\n"


def _finished(workdir: Path, generated: bool) -> str:
    lines = ["", "redline demo: every process it started has stopped."]
    if generated:
        lines += [f"  dashboards: {workdir / 'grafana' / 'dashboards'} (Grafana JSON; import them)",
                  f"  rules:      {workdir / 'rules'}"]
    lines += ["  the same dashboards: deploy/grafana/dashboards in the repository",
              "  with Docker, the same topology (but the gRPC inventory) plus Grafana:",
              "    docker compose -p redline-demo -f deploy/compose/docker-compose.yaml up --build"]
    return "\n".join(lines) + "\n"
