"""The USE per workload dashboard end to end: a real Prometheus scrapes redline's cgroups
collector on a real cgroup of this machine (laid out as kubelet's cgroupfs driver lays out a
container, with containerd's config for its names) running a throttled busy loop that wrote to
disk, and a kube-state-metrics stand-in; every panel has data, the workload filter works, and
the container recording rules are computed."""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redline.alerts.generate import RuleOptions, build_groups
from redline.alerts.render import prometheus_file
from redline.config import ConfigError
from redline.dashboards.command import dashboards
from redline.dashboards.common import to_json
from redline.stat.command import StatConfig, stat
from tests.dashboards.test_dashboards import targets
from tests.dashboards.test_end_to_end import Prometheus
from tests.exporters.node.cgroup_sandbox import CGROUPFS, cgroup, running_in
from tests.process import SidecarProcess

POD_UID = "5e0d7c1a-2b3c-4d5e-8f90-a1b2c3d4e5f6"
CONTAINER_ID = "7f" * 32
NAMES = {"namespace": "shop", "pod": "web-7d4b9-x2x4q", "container": "app"}
OWNER = "web-7d4b9"
CONTROLLERS = ("cpu", "cpuacct", "memory", "blkio")

KUBE_STATE_METRICS = "".join(
    f'{name}{{namespace="shop",pod="web-7d4b9-x2x4q",{labels}}} {value}\n'
    for name, labels, value in (
        ("kube_pod_container_resource_requests", 'container="app",resource="cpu",unit="core"',
         0.05),
        ("kube_pod_container_resource_requests",
         'container="app",resource="memory",unit="byte"', 32 << 20),
        ("kube_pod_container_status_restarts_total", 'container="app"', 1),
        ("kube_pod_owner", f'owner_kind="ReplicaSet",owner_name="{OWNER}",'
                           f'owner_is_controller="true"', 1)))


class _KubeStateMetrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = KUBE_STATE_METRICS.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _runtime_files(rootfs: Path) -> None:
    """containerd's OCI bundle for the container, as kubelet's CRI leaves it."""
    bundle = rootfs / "run/containerd/io.containerd.runtime.v2.task/k8s.io" / CONTAINER_ID
    bundle.mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({"annotations": {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": NAMES["container"],
        "io.kubernetes.cri.sandbox-name": NAMES["pod"],
        "io.kubernetes.cri.sandbox-namespace": NAMES["namespace"]}}))


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    directory = tmp_path_factory.mktemp("workload")
    _runtime_files(directory / "rootfs")
    for stem, groups in build_groups(None, RuleOptions()).items():
        (directory / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
    # cgroup v1 counts a cgroup's block I/O only on devices it has a throttle rule for (this
    # kernel, 6.x): a rule far above any real rate makes the container's writes counted.
    written = directory / "written"
    device = f"{os.major(os.stat(directory).st_dev)}:{os.minor(os.stat(directory).st_dev)}"
    settings = {"cpu/cpu.cfs_period_us": "100000", "cpu/cpu.cfs_quota_us": "10000",
                "memory/memory.limit_in_bytes": str(256 << 20),
                "blkio/blkio.throttle.write_bps_device": f"{device} {1 << 40}"}
    busy = ["sh", "-c", f"dd if=/dev/zero of={written} oflag=direct bs=64k count=16 "
                        f"2>/dev/null; while :; do :; done"]
    ksm = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KubeStateMetrics)
    threading.Thread(target=ksm.serve_forever, daemon=True).start()
    inner = f"/kubepods/burstable/pod{POD_UID}/{CONTAINER_ID}"
    with cgroup("redline-e2e", CONTROLLERS, settings, inner=inner) as path, \
            running_in(path, CONTROLLERS, busy):
        node = SidecarProcess(
            "node-exporter", "--listen", "127.0.0.1:0", "--collectors", "cgroups",
            "--cgroupfs", str(CGROUPFS), "--cgroups-depth", str(path.count("/")),
            "--rootfs", str(directory / "rootfs"), started="node exporter listening",
            service=False)
        prometheus = Prometheus(directory, {"node": node.admin_port,
                                            "kube-state-metrics": ksm.server_address[1]})
        try:
            time.sleep(8)  # scrapes every second: enough for rates over 5s
            yield prometheus
        finally:
            prometheus.stop()
            node.stop()
            ksm.shutdown()
            ksm.server_close()


def fill(expr: str, **values: str) -> str:
    return re.sub(r"\$(__rate_interval|cluster|namespace|workload|pod|container)\b",
                  lambda m: values.get(m.group(1), ".*"), expr)


def test_every_panel_has_data_for_the_workload(workload: Prometheus) -> None:
    dashboard = json.loads(to_json(dashboards()["redline-use-workload.json"]()))
    chosen = {"__rate_interval": "5s", "namespace": "shop", "workload": OWNER}
    empty = [f"{panel['title']} ({t['refId']})" for panel, t in targets(dashboard)
             if not workload.query(fill(t["expr"], **chosen))]
    assert not empty, f"panels without data: {empty}"
    # a cluster this Prometheus does not have (no label at all): every panel is empty
    shown = [f"{panel['title']} ({t['refId']})" for panel, t in targets(dashboard)
             if workload.query(fill(t["expr"], **chosen, cluster="elsewhere"))]
    assert shown == []
    # what the panels show is the container, named from containerd's files
    usage = next(t["expr"] for panel, t in targets(dashboard)
                 if panel["title"].startswith("CPU usage") and t["refId"] == "A")
    (line,) = workload.query(fill(usage, **chosen))
    assert line["metric"] == NAMES
    # a tenth of a CPU (its quota) at most; the quota's precision is test_cgroups_real.py's
    assert 0.03 < float(line["value"][1]) < 0.13
    # another workload's pods are left out; .* keeps every one
    assert not workload.query(fill(usage, **{**chosen, "workload": "other"}))
    assert workload.query(fill(usage, **{**chosen, "workload": ".*"}))
    for variable in dashboard["templating"]["list"][1:]:
        selector = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
        assert selector is not None, variable["name"]
        found = {s["metric"].get(selector.group(2))
                 for s in workload.query(fill(selector.group(1), **chosen))}
        if variable["name"] == "cluster":  # one Prometheus: no label, no value; All keeps all
            assert found == {None}
            continue
        assert found == {OWNER if variable["name"] == "workload"
                         else NAMES[variable["name"]]}, variable["name"]


def test_the_container_recording_rules_have_data(workload: Prometheus) -> None:
    throttled = workload.query("container:use_cpu_throttled:ratio_rate5m")
    assert [s["metric"]["container"] for s in throttled] == ["app"]
    assert float(throttled[0]["value"][1]) > 0.5  # a busy loop waits out most periods
    # seconds of samples in a 5m window: the rate is a fraction of the real one; its
    # ratio to the quota is exact in the dashboard test above (5s window)
    (quota_used,) = workload.query("container:use_cpu_quota_used:ratio_rate5m")
    assert quota_used["metric"]["pod"] == NAMES["pod"] and float(quota_used["value"][1]) > 0
    assert workload.query("container:use_memory_limit_used:ratio")


def test_stat_containers_is_the_use_table_per_container(workload: Prometheus) -> None:
    text = stat(StatConfig(f"http://127.0.0.1:{workload.port}", what="containers",
                           window="5s"))
    header, *rows = (line.split() for line in text.splitlines())
    assert header == ["NAMESPACE", "POD", "CONTAINER", "CPU-USED", "CPU-LIMIT", "THROTTLED",
                      "MEM-WS", "MEM-LIMIT", "OOM-KILLS"]
    (row,) = rows
    assert row[:3] == ["shop", "web-7d4b9-x2x4q", "app"]
    assert 0.03 < float(row[3]) < 0.13 and row[4] == "0.10"  # cores: used, quota
    assert row[5].endswith("%") and float(row[5][:-1]) > 50
    assert row[6].endswith(("Ki", "Mi")) and row[7] == "256Mi" and row[8] == "0"


def test_stat_containers_without_container_metrics_says_what_to_scrape() -> None:
    with pytest.raises(ConfigError, match=re.escape(
            "no container CPU usage in the last 1m: is it scraping kubelet's cAdvisor or "
            "redline's node exporter with --collectors ...,cgroups?")):
        stat(StatConfig("http://p:9090", what="containers"), run_query=lambda url, q: [])
