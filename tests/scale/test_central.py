"""Beyond one Prometheus, end to end: two Prometheus servers (external_labels cluster a and b)
scrape two small topologies (ambassadors in front of a real upstream; in a, a quarter of the
requests fail) and remote-write into VictoriaMetrics; vmalert evaluates redline's generated rules
there. The burn-rate alert fires for a only, with its cluster label; every dashboard query, with
the cluster variable set to each cluster, has that cluster's data only; `redline stat` reads it.
The same rule files pass promtool's tests for one Prometheus (tests/alerts)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from redline.alerts import red_rules, slo_rules
from redline.alerts.generate import RuleOptions, build_groups
from redline.alerts.render import prometheus_file
from redline.alerts.rules import is_alert
from redline.alerts.spec import load_spec
from redline.dashboards.command import dashboards
from redline.dashboards.common import to_json
from redline.stat.command import StatConfig, stat
from tests.dashboards.test_dashboards import substitute, targets
from tests.dashboards.test_end_to_end import EMPTY_BY_DESIGN, Prometheus, listen_port
from tests.process import SidecarProcess
from tests.scale.central import Notifier, VictoriaMetrics, VMAlert
from tests.sidecars.ambassador.conftest import AmbassadorProcess
from tests.sidecars.ambassador.upstream import UpstreamServer

CLUSTERS = ("a", "b")
FAILING = "a"
SPEC = ("slos:\n  - service: shop\n    availability: 99.9\n"
        "    latency: {threshold: 0.25, target: 99}\n")
BURN = "RedlineAvailabilityBurnRate"


def wait_for(what: str, missing: Callable[[], object], timeout: float = 50) -> None:
    """Until `missing()` is empty (or False), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while left := missing():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g} s: {left}")
        time.sleep(0.5)


def load(inbound: dict[str, int], outbound: dict[str, int], stop: threading.Event) -> None:
    """Requests through every cluster's ambassadors until `stop`; in the failing cluster one
    in four is a 503. It runs while the tests query: VictoriaMetrics leaves out NaN (a ratio
    of no requests, a quantile of empty buckets) where Prometheus returns it, so an idle
    service's panels are empty there."""
    for port in inbound.values():  # a broken header: a rejection in each cluster
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nNOT A HEADER\r\n\r\n")
            sock.recv(1024)
    conns = {(cluster, port): http.client.HTTPConnection("127.0.0.1", port, timeout=10)
             for ports in (inbound, outbound) for cluster, port in ports.items()}
    i = 0
    while not stop.wait(0.02):
        for (cluster, _), conn in conns.items():
            paths = ("/status/503", "/users/7", "/bytes/100", "/slow/0")
            path = paths[i % 4] if cluster == FAILING else paths[1 + i % 3]
            conn.request("GET", path)
            conn.getresponse().read()
        i += 1
    for conn in conns.values():
        conn.close()


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    directory = tmp_path_factory.mktemp("central")
    (directory / "slo.yaml").write_text(SPEC)
    rules = directory / "rules"
    rules.mkdir()
    files = build_groups(load_spec(directory / "slo.yaml"), RuleOptions())
    for group in files["redline-slo"]:
        # vmalert first evaluates a group up to one interval after it starts (it spreads the
        # groups over their intervals): the tile groups would write nothing for up to an
        # hour. At the test's interval they write a tile each time, which changes no window
        # (a ratio of sums, a mean; tests/alerts/test_slo_tiles.py).
        group.pop("interval", None)
    for stem, groups in files.items():
        (rules / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
    # What vmalert records from the RED series (USE and container rules: no inputs for some),
    # in both clusters (the SLO objective too: it is recorded for each cluster's traffic) but
    # the failed requests per route, which b has none of, and the gRPC records (HTTP only here).
    records = {str(rule.get("record")) for stem in ("redline-red", "redline-slo")
               for group in files[stem] for rule in group["rules"] if not is_alert(rule)
               and red_rules.GRPC.prefix not in str(rule.get("record"))}
    recorded: set[tuple[str, str | None]] = {
        (name, cluster) for name in records - {slo_rules.SERVICES} for cluster in CLUSTERS}
    recorded.discard((red_rules.errors_name("service_route"), "b"))
    # The SLO services are the spec's, not a cluster's: vmalert records them without one.
    recorded.add((slo_rules.SERVICES, None))
    names = "|".join(sorted({name for name, _ in recorded}))
    with contextlib.ExitStack() as stack:
        def started(process: Any) -> Any:
            stack.callback(process.stop)
            return process

        vm = started(VictoriaMetrics(directory))
        notifier = started(Notifier())
        vmalert = started(VMAlert(directory, sorted(rules.glob("*.rules.yaml")), vm,
                                  notifier.url))
        upstream = stack.enter_context(UpstreamServer())
        # One host's node exporter, scraped by both clusters' Prometheus: the same node name in
        # two clusters, which the rules must keep apart.
        node = started(SidecarProcess("node-exporter", "--listen", "127.0.0.1:0",
                                      started="node exporter listening", service=False))
        inbound, outbound = {}, {}
        for cluster in CLUSTERS:
            ambassadors = [started(AmbassadorProcess(*mode, "--upstream",
                                                     f"127.0.0.1:{upstream.port}",
                                                     "--drain-delay", "0"))
                           for mode in ((), ("--mode", "outbound"))]
            inbound[cluster], outbound[cluster] = (listen_port(a) for a in ambassadors)
            own = directory / cluster
            own.mkdir()
            started(Prometheus(own, {
                "shop-redline": ambassadors[0].admin_port,
                "shop-redline-outbound": ambassadors[1].admin_port,
                "node": node.admin_port,
            }, extra={"global": {"external_labels": {"cluster": cluster}},
                      "remote_write": [{"url": vm.remote_write,
                                        "queue_config": {"batch_send_deadline": "500ms"}}]}))
        stop = threading.Event()
        loader = threading.Thread(target=load, args=(inbound, outbound, stop), daemon=True)
        loader.start()
        stack.callback(loader.join, 20)
        stack.callback(stop.set)
        # Every RED and SLO rule vmalert records, read back from VictoriaMetrics, in both
        # clusters: a rule that reads another's record sees it one evaluation later, and the
        # budget is six records from the raw series (route, service, SLO, period, budget).
        wait_for("recorded series in both clusters", lambda: recorded - {
            (s["metric"]["__name__"], s["metric"].get("cluster")) for s in vm.query(
                f'count by (__name__, cluster) ({{__name__=~"{names}"}})')}, timeout=120)
        yield {"vm": vm, "vmalert": vmalert, "notifier": notifier,
               "node": f"127.0.0.1:{node.admin_port}"}


def test_the_burn_rate_alert_fires_for_the_failing_cluster_only(
        central: dict[str, Any]) -> None:
    vmalert, notifier = central["vmalert"], central["notifier"]

    def burning() -> list[dict[str, Any]]:
        return [a for a in vmalert.alerts() if a["name"] == BURN and a["state"] == "firing"]

    pages = {("page", "1h"), ("page", "6h")}

    def windows() -> set[tuple[str, str]]:
        return {(a["labels"]["severity"], a["labels"]["long_window"]) for a in burning()}

    # The 6h window reads the 5m tiles, which lag the 5m records by one tile evaluation: the
    # two pages may start firing one evaluation apart (CI once read the 1h page alone).
    wait_for("firing burn-rate alerts in both page windows", lambda: pages - windows(),
             timeout=90)
    alerts = burning()
    assert {a["labels"]["cluster"] for a in alerts} == {FAILING}
    assert {(a["labels"]["severity"], a["labels"]["long_window"]) for a in alerts} >= pages
    assert all(a["labels"]["service_name"] == "shop" for a in alerts)
    wait_for("notification", lambda: not any(
        n["labels"].get("alertname") == BURN for n in notifier.received))
    assert {n["labels"]["cluster"] for n in notifier.received
            if n["labels"].get("alertname") == BURN} == {FAILING}


def test_the_error_ratio_is_each_clusters_own(central: dict[str, Any]) -> None:
    ratios = {s["metric"]["cluster"]: float(s["value"][1]) for s in central["vm"].query(
        'slo:sli_error:ratio_rate5m{service_name="shop",slo="availability"}')}
    assert set(ratios) == set(CLUSTERS)
    assert 0.15 < ratios[FAILING] < 0.35 and ratios["b"] == 0  # a quarter of a's requests


BOARDS = {**{name: build for name, build in dashboards().items()
             if name != "redline-use-workload.json"},  # needs cgroups: tests/dashboards
          "recorded/redline-red-overview.json":
              dashboards(recorded=True)["redline-red-overview.json"]}


@pytest.mark.parametrize("cluster", CLUSTERS)
@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_dashboard_query_has_the_clusters_own_data(central: dict[str, Any], name: str,
                                                         cluster: str) -> None:
    dashboard = json.loads(to_json(BOARDS[name]()))
    values = {"service": "shop", "route": ".*", "instance": central["node"],
              "cluster": cluster, "__rate_interval": "15s"}
    empty, mixed = [], []
    for panel, t in targets(dashboard):
        if panel["title"] in EMPTY_BY_DESIGN:
            continue
        result = central["vm"].query(substitute(t["expr"], values))
        where = f"{panel['title']} ({t['refId']})"
        # The clusters here carry HTTP only: the gRPC panels (rpc_* metrics, grouped by the
        # same Grouping) get their data from real gRPC load in tests/dashboards.
        if not result and "rpc_" not in t["expr"]:
            empty.append(where)
        if {s["metric"].get("cluster", cluster) for s in result} - {cluster}:
            mixed.append(where)
    assert not empty, f"panels without data in VictoriaMetrics: {empty}"
    assert not mixed, f"panels with another cluster's series: {mixed}"


def test_stat_reads_victoriametrics_per_cluster(central: dict[str, Any]) -> None:
    url = central["vm"].url
    every = stat(StatConfig(url, window="15s")).splitlines()
    assert every[0].split()[:2] == ["CLUSTER", "SERVICE"]
    success = {line.split()[0]: line.split()[3] for line in every[1:]}
    assert set(success) == set(CLUSTERS)
    assert success["b"] == "100.00%" and float(success[FAILING][:-1]) < 90
    one = stat(StatConfig(url, window="15s", cluster="b")).splitlines()
    assert [line.split()[0] for line in one[1:]] == ["b"]
    nodes = stat(StatConfig(url, what="nodes", window="15s", cluster=FAILING)).splitlines()
    assert nodes[0].split()[:2] == ["CLUSTER", "INSTANCE"]
    assert [line.split()[0] for line in nodes[1:]] == [FAILING]
