"""End to end: real Prometheus scrapes real ambassadors (inbound and outbound for `shop`, inbound
for `other`), an adapter, the node exporter and `shop`'s gRPC ambassador (--protocol h2c) in
front of a real grpcio server, called by a real grpcio client (tests/dashboards/grpc_load.py),
under load, with redline's rules loaded; every dashboard query returns data, and a service's
panels show that service only."""

from __future__ import annotations

import glob
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from redline import queries
from redline.alerts.generate import RuleOptions, build_groups
from redline.alerts.render import prometheus_file
from redline.alerts.spec import load_spec
from redline.dashboards.command import dashboards
from redline.dashboards.common import to_json
from tests.dashboards.grpc_load import call, grpc_service
from tests.dashboards.test_dashboards import substitute, targets
from tests.process import SidecarProcess, free_port, wait_port
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.upstream import UpstreamServer


def _has(pattern: str, predicate: Any = bool) -> bool:
    for path in glob.glob(pattern):
        try:
            if predicate(Path(path).read_text().strip()):
                return True
        except OSError:
            continue
    return False


# Empty by design on a machine without the source; on real hardware they must have data.
EMPTY_BY_DESIGN = set()
if not _has("/sys/class/net/*/speed", lambda t: t.lstrip("-").isdigit() and int(t) > 0):
    EMPTY_BY_DESIGN.add("Network utilisation")  # virtual NICs report no link speed
if not _has("/sys/block/*/device/ioerr_cnt"):
    EMPTY_BY_DESIGN.add("Disk errors")  # only SCSI/SATA disks count I/O errors
if not os.path.exists("/proc/pressure/cpu"):
    EMPTY_BY_DESIGN |= {"Pressure stall (PSI)", "Memory saturation"}


class Prometheus:
    def __init__(self, directory: Path, jobs: dict[str, int],
                 extra: dict[str, Any] | None = None) -> None:
        """Scrapes `jobs` every second with the rule files in `directory`; `extra`: more of
        the configuration (`remote_write`, `global.external_labels`), merged one level deep."""
        self.port = free_port()
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in directory.glob("*.rules.yaml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                for job, port in jobs.items()],
        }
        for key, value in (extra or {}).items():
            config[key] = {**config[key], **value} if isinstance(value, dict) else value
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is not installed; `make test` installs it")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, timeout=30)

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("e2e")
    spec = directory / "slo.yaml"
    spec.write_text("slos:\n  - service: shop\n    availability: 99\n"
                    "    latency: {threshold: 0.25, target: 95}\n")
    # Tiles every second: this Prometheus runs a minute, its hourly tiles would not exist yet.
    for stem, groups in build_groups(load_spec(spec), RuleOptions(tile_interval="1s")).items():
        (directory / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
    log = directory / "access.log"
    log.touch()
    with UpstreamServer() as upstream, grpc_service() as grpc:
        inbound = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}",
                                    "--drain-delay", "0")
        outbound = AmbassadorProcess("--mode", "outbound", "--upstream",
                                     f"127.0.0.1:{upstream.port}", "--drain-delay", "0")
        # shop serves gRPC too, on a port of its own (one ambassador process per port here)
        grpc_inbound = AmbassadorProcess("--protocol", "h2c", "--upstream",
                                         f"127.0.0.1:{grpc.port}", "--drain-delay", "0")
        # Another service's ambassador, which only ever rejects (its own reason, 431).
        other = SidecarProcess("ambassador", "--listen", "127.0.0.1:0", "--upstream",
                               f"127.0.0.1:{upstream.port}", "--drain-delay", "0",
                               "--max-header-bytes", "1024", started="ambassador listening",
                               service_name="other")
        adapter = SidecarProcess("adapter", "--access-log", str(log), "--poll-interval", "0.1",
                                 started="adapter started", service_name="web")
        node = SidecarProcess("node-exporter", "--listen", "127.0.0.1:0",
                              started="node exporter listening", service=False)
        prometheus = Prometheus(directory, {
            "shop-redline": inbound.admin_port, "shop-redline-outbound": outbound.admin_port,
            "other-redline": other.admin_port, "web-redline-adapter": adapter.admin_port,
            "node": node.admin_port, "shop-redline-grpc": grpc_inbound.admin_port,
            "shop-grpc-client": grpc.metrics_port})
        grpc_calls = threading.Thread(target=call, args=(grpc, grpc_inbound.port, 12),
                                      daemon=True)
        try:
            grpc_calls.start()
            load(inbound.port, outbound.port, log, seconds=12)
            grpc_calls.join(20)
            with socket.create_connection(("127.0.0.1", listen_port(other)), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"x" * 4096 + b"\r\n\r\n")
                sock.recv(1024)
            time.sleep(3)  # a few more scrapes and rule evaluations
            yield {"prometheus": prometheus, "node": f"127.0.0.1:{node.admin_port}"}
        finally:
            prometheus.stop()
            for proc in (inbound, outbound, grpc_inbound, other, adapter, node):
                proc.stop()


def listen_port(ambassador: SidecarProcess) -> int:
    return int(str(ambassador.started["listen"]).rsplit(":", 1)[1])


def load(inbound: int, outbound: int, log: Path, seconds: float) -> None:
    """Requests through both ambassadors and access-log lines, for a bounded time."""
    deadline = time.monotonic() + seconds
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)
             for port in (inbound, outbound)]
    i = 0
    with log.open("a") as handle:
        while time.monotonic() < deadline:
            for conn in conns:
                path = ("/status/503", "/users/7", "/bytes/100", "/slow/0")[i % 4]
                conn.request("GET", path)
                conn.getresponse().read()
            handle.write(f'10.0.0.1 - - [26/Nov/2026:16:00:00 +0000] "GET /items/{i} HTTP/1.1" '
                         f'{200 if i % 9 else 500} 10 "-" "curl/8" 0.0{i % 10}\n')
            handle.flush()
            i += 1
            time.sleep(0.01)
    for conn in conns:
        conn.close()
    with socket.create_connection(("127.0.0.1", inbound), timeout=10) as sock:
        # A request line (so HTTP/1 to the ambassador's detection) with a broken header: a
        # 400, so redline_ambassador_rejected_total has a series. (Bytes that are not HTTP at
        # all are passed through to the app as TCP.)
        sock.sendall(b"GET / HTTP/1.1\r\nNOT A HEADER\r\n\r\n")
        sock.recv(1024)


# The workload dashboard needs real cgroups and kube-state-metrics: test_workload_end_to_end.py
@pytest.mark.parametrize("name", sorted(set(dashboards()) - {"redline-use-workload.json"}))
def test_every_panel_query_returns_data(stack: dict[str, Any], name: str) -> None:
    dashboard = json.loads(to_json(dashboards()[name]()))
    values = {"service": "shop", "route": ".*", "instance": stack["node"],
              "__rate_interval": "15s"}
    empty = []
    checked = 0
    for panel, t in targets(dashboard):
        if panel["title"] in EMPTY_BY_DESIGN:
            continue
        result = stack["prometheus"].query(substitute(t["expr"], values))
        checked += 1
        if not result:
            empty.append(f"{panel['title']} ({t['refId']})")
        elif "or vector(0)" in t["expr"]:
            # These fall back to 0 without data: with the load sent, they must be above it.
            assert float(result[0]["value"][1]) > 0, panel["title"]
    assert not empty, f"panels without data: {empty}"
    assert checked == sum(1 for panel, _ in targets(dashboard)
                          if panel["title"] not in EMPTY_BY_DESIGN) > 0


@pytest.mark.parametrize("name", sorted(set(dashboards()) - {"redline-use-workload.json"}))
def test_another_cluster_shows_nothing(stack: dict[str, Any], name: str) -> None:
    """This Prometheus has no cluster label: All (`.*`) shows everything (above), a named
    cluster nothing, in every panel; a query that ignored the variable would still show data
    (`or vector(0)` and `* 0` fallbacks may show 0)."""
    dashboard = json.loads(to_json(dashboards()[name]()))
    values = {"service": "shop", "route": ".*", "instance": stack["node"],
              "__rate_interval": "15s", "cluster": "elsewhere"}
    shown = [f"{panel['title']} ({t['refId']})" for panel, t in targets(dashboard)
             if any(float(s["value"][1]) != 0 for s in stack["prometheus"].query(
                 substitute(t["expr"], values)))]
    assert shown == []


def test_the_adapter_service_fills_the_red_dashboard(stack: dict[str, Any]) -> None:
    dashboard = json.loads(to_json(dashboards()["redline-red-service.json"]()))
    values = {"service": "web", "route": ".*", "instance": stack["node"],
              "__rate_interval": "15s"}
    # The raw series first: the summed stats would show 0 even without any data.
    assert stack["prometheus"].query(
        'http_server_request_duration_seconds_count{service_name="web",http_route="/items/{id}"}')
    for panel, t in targets(dashboard):
        if panel["title"] in ("p99", "Routes", "Error ratio by route", "Latency"):
            assert stack["prometheus"].query(substitute(t["expr"], values)), panel["title"]


def test_sidecar_health_shows_the_chosen_services_ambassadors_only(
        stack: dict[str, Any]) -> None:
    prometheus = stack["prometheus"]
    dashboard = json.loads(to_json(dashboards()["redline-red-service.json"]()))
    panel = next(p for p in dashboard["panels"] if p["title"] == "Sidecar health")
    rejected, retries = (t["expr"] for t in panel["targets"] if t["refId"] in ("B", "C"))
    values = {"service": "shop", "route": ".*", "__rate_interval": "1m"}
    # Both ambassadors rejected something: shop a non-HTTP line, other a 431.
    assert {s["metric"]["job"] for s in prometheus.query(
        "redline_ambassador_rejected_total")} == {"shop-redline", "other-redline"}

    def reasons(service: str) -> set[str]:
        found = prometheus.query(substitute(rejected, {**values, "service": service}))
        return {sample["metric"]["reason"] for sample in found}

    assert reasons("shop") == {"bad_request"}
    assert reasons("other") == {"head_too_large"}
    assert reasons("nobody") == set()
    assert prometheus.query(substitute(retries, values))
    assert not prometheus.query(substitute(retries, {**values, "service": "nobody"}))
    # The scrape targets the panel keeps for shop: its inbound (HTTP and gRPC) and outbound
    # ambassadors.
    kept = queries.of_sidecars("redline_ambassador_upstream_retries_total",
                               [queries.eq("service_name", "shop")])
    assert {s["metric"]["job"] for s in prometheus.query(kept)} == {
        "shop-redline", "shop-redline-grpc", "shop-redline-outbound"}


def test_the_recorded_overview_shows_what_the_raw_one_shows(stack: dict[str, Any]) -> None:
    """With redline's RED rules loaded, the `--recorded` overview has data in every panel, for
    the same services as the raw overview."""
    prometheus = stack["prometheus"]
    recorded, raw = (json.loads(to_json(dashboards(recorded=flag)["redline-red-overview.json"]()))
                     for flag in (True, False))
    values = {"__rate_interval": "1m"}
    for (panel, ours), (_, theirs) in zip(targets(recorded), targets(raw), strict=True):
        mine = prometheus.query(substitute(ours["expr"], values))
        assert mine, f"{panel['title']} ({ours['refId']}) has no data"
        if panel["title"] in ("Services", "gRPC services", "Requests by service"):
            expected = prometheus.query(substitute(theirs["expr"], values))
            assert {s["metric"].get("service_name") for s in mine} == \
                {s["metric"].get("service_name") for s in expected}, panel["title"]


def _panel(dashboard: dict[str, Any], title: str) -> list[str]:
    return [t["expr"] for t in next(p for p in dashboard["panels"]
                                    if p["title"] == title)["targets"]]


def test_the_grpc_panels_count_statuses_and_errors_as_the_client_saw_them(
        stack: dict[str, Any]) -> None:
    """grpc_load.MIX: per 8 calls, GetItem 4 OK and 1 NOT_FOUND, Reserve 1 OK, 1 INTERNAL and
    1 UNAVAILABLE. NOT_FOUND is an answer: a status code, never an error."""
    prometheus: Prometheus = stack["prometheus"]
    service = json.loads(to_json(dashboards()["redline-red-service.json"]()))
    values = {"service": "shop", "route": ".*", "__rate_interval": "1m"}

    def run(expr: str) -> list[dict[str, Any]]:
        return prometheus.query(substitute(expr, values))

    (by_status,) = _panel(service, "gRPC calls by status code")
    assert {s["metric"]["rpc_grpc_status_code"] for s in run(by_status)} == {"0", "5", "13", "14"}
    (by_type,) = _panel(service, "gRPC errors by type")
    assert {s["metric"]["error_type"] for s in run(by_type)} == {"INTERNAL", "UNAVAILABLE"}
    calls, ratio, *_ = _panel(service, "gRPC methods")
    ratios = {s["metric"]["rpc_method"]: float(s["value"][1]) for s in run(ratio)}
    assert ratios["GetItem"] == 0  # its NOT_FOUNDs are not errors
    assert abs(ratios["Reserve"] - 2 / 3) < 0.1
    assert {s["metric"]["rpc_service"] for s in run(calls)} == {"shop.Catalog"}
    # The service is listed once for HTTP and gRPC; the overview has it in both tables.
    variable = next(v for v in service["templating"]["list"] if v["name"] == "service")
    selector = re.fullmatch(r"label_values\((.+), service_name\)", variable["query"])
    assert selector is not None
    listed = run(selector.group(1))
    assert {"shop", "web", "other"} <= {s["metric"]["service_name"] for s in listed}
    # gRPC series list a service too: one that serves gRPC only would be there
    assert "rpc_server_duration_seconds_count" in {
        s["metric"]["__name__"] for s in listed if s["metric"]["service_name"] == "shop"}
    overview = json.loads(to_json(dashboards()["redline-red-overview.json"]()))
    grpc_services = _panel(overview, "gRPC services")[0]
    assert {s["metric"]["service_name"] for s in run(grpc_services)} == {"shop"}
    (outbound_http, outbound_grpc) = _panel(service, "Outbound calls: p99 by dependency")
    assert run(outbound_grpc) and run(outbound_http)
