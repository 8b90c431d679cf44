"""What `redline demo` starts, as data: every child's command line and port, Prometheus's and
Alertmanager's configs. Pure: ports and a work directory in, plans out (the same topology as
deploy/compose/docker-compose.yaml, on loopback).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redline.exporters.node.collectors import COLLECTORS

SERVICE = "checkout"          # the demo app's service name: deploy/prometheus/slo.yaml has SLOs
LOG_SERVICE = "checkout-log"  # the same app seen by the adapter, through its access log
GRPC_SERVICE = "inventory"    # the gRPC dependency, seen by the ambassador in front of it
PORT_NAMES = ("payments", "egress", "egress_admin", "app", "ambassador", "ambassador_admin",
              "adapter_admin", "node", "prometheus", "alertmanager", "inventory",
              "inventory_h2c", "inventory_admin")

# An SLO spec for the demo: burn-rate alerts for the checkout. Tighter than
# deploy/prometheus/slo.yaml on purpose: with seconds of history every window holds the same
# ratio, so an alert fires once that ratio exceeds its burn-rate factor times the error budget.
# About 1% of the checkout's requests fail and about 4% take longer than 250 ms, so budgets of
# 0.03% and 0.2% put even the fastest burn (14.4x) under those ratios: every alert kind (page and
# ticket, availability and latency) fires within the first half minute.
# The scaling block shows what an HPA on requests per second would want for the demo's load
# (the screen's Autoscaling section; docs/autoscaling.md).
DEMO_SLO = f"""\
period: 30d
slos:
  - service: {SERVICE}
    availability: 99.97
    latency:
      threshold: 0.25
      target: 99.8
    scaling:
      workload: {{kind: Deployment, name: {SERVICE}}}
      min_replicas: 1
      max_replicas: 10
      target: {{requests_per_second_per_pod: 20}}
      window: 20s   # the demo's history is seconds long (the default, 2m, would dilute it)
"""


@dataclass(frozen=True)
class Child:
    name: str
    argv: tuple[str, ...]
    port: int          # ready once something listens here
    scrape: bool       # Prometheus (or the direct view) reads /metrics on `port`


def _redline(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "redline.cli", *args)


def redline_children(ports: dict[str, int], workdir: Path, cgroups: bool = False,
                     grpc: bool = False) -> list[Child]:
    """The app, its dependencies and redline's parts, in start order (dependencies first);
    `cgroups`: the machine has a cgroup file system, so the node exporter adds container USE;
    `grpc`: grpcio is installed, so the app calls a gRPC inventory through an ambassador."""
    at = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    collectors = ("--collectors", ",".join([*COLLECTORS, "cgroups"])) if cgroups else ()
    access_log = str(workdir / "access.log")
    quick_drain = ("--drain-delay", "0", "--drain-timeout", "5")  # no endpoints to update here
    inventory = [
        Child("inventory", _redline("demo-app", "--role", "inventory", "--listen",
                                    at["inventory"]), ports["inventory"], False),
        Child("inventory-h2c", _redline("ambassador", "--protocol", "h2c", "--listen",
                                        at["inventory_h2c"], "--upstream", at["inventory"],
                                        "--admin", at["inventory_admin"], "--service",
                                        GRPC_SERVICE, *quick_drain),
              ports["inventory_admin"], True),
    ] if grpc else []
    calls_inventory = ("--grpc-dependency", at["inventory_h2c"]) if grpc else ()
    return [
        *inventory,
        Child("payments", _redline("demo-app", "--role", "dependency", "--listen",
                                   at["payments"]), ports["payments"], False),
        Child("egress", _redline("ambassador", "--mode", "outbound", "--listen", at["egress"],
                                 "--upstream", at["payments"], "--admin", at["egress_admin"],
                                 "--service", SERVICE, *quick_drain),
              ports["egress_admin"], True),
        Child("app", _redline("demo-app", "--listen", at["app"], "--access-log", access_log,
                              "--dependency", f"http://{at['egress']}", *calls_inventory),
              ports["app"], False),
        Child("ambassador", _redline("ambassador", "--listen", at["ambassador"], "--upstream",
                                     at["app"], "--admin", at["ambassador_admin"], "--service",
                                     SERVICE, *quick_drain),
              ports["ambassador_admin"], True),
        Child("adapter", _redline("adapter", "--service", LOG_SERVICE, "--access-log",
                                  access_log, "--format", "nginx", "--admin",
                                  at["adapter_admin"]), ports["adapter_admin"], True),
        Child("node-exporter", _redline("node-exporter", "--listen", at["node"], *collectors),
              ports["node"], True),
    ]


def prometheus_child(binary: str, ports: dict[str, int], workdir: Path) -> Child:
    return Child("prometheus", (binary, f"--config.file={workdir / 'prometheus.yml'}",
                                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                                f"--web.listen-address=127.0.0.1:{ports['prometheus']}"),
                 ports["prometheus"], False)


def alertmanager_child(binary: str, ports: dict[str, int], workdir: Path) -> Child:
    return Child("alertmanager", (binary, f"--config.file={workdir / 'alertmanager.yml'}",
                                  f"--storage.path={workdir / 'alertmanager-data'}",
                                  f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                                  "--cluster.listen-address="),  # no gossip port: one instance
                 ports["alertmanager"], False)


EVALUATION_INTERVAL = "2s"  # the demo's Prometheus; its tile groups too (run.py)


def prometheus_config(children: list[Child], workdir: Path,
                      alertmanager_port: int | None) -> dict[str, Any]:
    """Scrape every redline part every 2 s (a demo wants lines to move), evaluate the rules
    written into workdir/rules, send alerts to Alertmanager when one runs."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "2s", "evaluation_interval": EVALUATION_INTERVAL},
        "rule_files": [str(workdir / "rules" / "*.rules.yaml")],
        "scrape_configs": [
            {"job_name": f"redline-{child.name}",
             "static_configs": [{"targets": [f"127.0.0.1:{child.port}"]}]}
            for child in children if child.scrape],
    }
    if alertmanager_port is not None:
        config["alerting"] = {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]}
    return config


# Alerts of the demo go nowhere (no receiver): Alertmanager shows them in its UI and API.
ALERTMANAGER_CONFIG = """\
route:
  receiver: demo
  group_by: [alertname, service_name]
  group_wait: 5s
receivers:
  - name: demo
"""
