"""Overviews: every service (RED) and every node (USE) on one screen, linking to the details."""

from __future__ import annotations

from typing import Any

from grafanalib.core import BarGauge, Table, TimeSeries

from redline.dashboards import red, use
from redline.dashboards.common import dashboard, target
from redline.dashboards.layout import Layout

RED_UID = "redline-red-overview"
USE_UID = "redline-use-cluster"
ALL = 'service_name!=""'
RATE = "[$__rate_interval]"


def _link_to(uid: str, variable: str, field: str) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": field},
            "properties": [{"id": "links", "value": [{
                "title": "Open the details",
                "url": f"/d/{uid}?var-{variable}=${{__value.raw}}&${{__url_time_range}}"}]}]}


def red_overview() -> dict[str, Any]:
    errors = f'{ALL},error_type!=""'
    layout = Layout()
    layout.row("Services")
    layout.add(Table(
        title="Services", description="Click a service for its RED dashboard.",
        targets=[target(red.requests(ALL, by="service_name"), ref="A", instant=True,
                        table=True),
                 target(f"sum by (service_name) (rate({red.COUNT}{{{errors}}}{RATE}))\n/\n"
                        f"sum by (service_name) (rate({red.COUNT}{{{ALL}}}{RATE}))",
                        ref="B", instant=True, table=True),
                 target(f"histogram_quantile(0.5, sum by (le, service_name) "
                        f"(rate({red.BUCKET}{{{ALL}}}{RATE})))", ref="C", instant=True,
                        table=True),
                 target(f"histogram_quantile(0.99, sum by (le, service_name) "
                        f"(rate({red.BUCKET}{{{ALL}}}{RATE})))", ref="D", instant=True,
                        table=True)],
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {
                "excludeByName": {"Time": True},
                "renameByName": {"service_name": "Service", "Value #A": "Requests/s",
                                 "Value #B": "Errors", "Value #C": "p50",
                                 "Value #D": "p99"}}}],
        overrides=[_link_to(red.UID, "service", "Service")]), 24, 8)
    layout.row("Routes that need attention")
    layout.add(BarGauge(
        title="Top routes by errors per second", format="reqps", orientation="horizontal",
        displayMode="gradient", calc="lastNotNull",
        targets=[target(f"topk(10, sum by (service_name, http_route) "
                        f"(rate({red.COUNT}{{{errors}}}{RATE})))",
                        "{{service_name}} {{http_route}}", instant=True)]), 12, 9)
    layout.add(BarGauge(
        title="Top routes by p99", format="s", orientation="horizontal",
        displayMode="gradient", calc="lastNotNull",
        targets=[target(f"topk(10, histogram_quantile(0.99, sum by (le, service_name, "
                        f"http_route) (rate({red.BUCKET}{{{ALL}}}{RATE}))))",
                        "{{service_name}} {{http_route}}", instant=True)]), 12, 9)
    layout.row("Traffic")
    layout.add(TimeSeries(
        title="Requests by service", unit="reqps", stacking={"mode": "normal"},
        targets=[target(red.requests(ALL, by="service_name"), "{{service_name}}")]), 24, 8)
    return dashboard(
        title="redline / RED overview", uid=RED_UID, tags=["redline", "red"],
        description="Every service's rate, errors and duration; click through to a service.",
        panels=layout.panels, variables=[],
        links=[{"title": "RED service", "type": "link", "url": f"/d/{red.UID}",
                "keepTime": True},
               {"title": "USE cluster", "type": "link", "url": f"/d/{USE_UID}",
                "keepTime": True},
               {"title": "Runbooks", "type": "link", "url": "docs/alerts.md",
                "targetBlank": True}])


def use_cluster() -> dict[str, Any]:
    cpus = 'count(node_cpu_seconds_total{mode="idle"})'
    layout = Layout()
    layout.row("Utilisation: each node's share of the cluster (stacks to at most 100%)")
    layout.add(TimeSeries(
        title="CPU", unit="percentunit", stacking={"mode": "normal"},
        targets=[target(f'sum by (instance) (rate(node_cpu_seconds_total'
                        f'{{mode!~"idle|iowait|steal"}}{RATE}))\n/ scalar({cpus})',
                        "{{instance}}")]), 12, 8)
    layout.add(TimeSeries(
        title="Memory", unit="percentunit", stacking={"mode": "normal"},
        targets=[target("sum by (instance) (node_memory_MemTotal_bytes - "
                        "node_memory_MemAvailable_bytes)\n"
                        "/ scalar(sum(node_memory_MemTotal_bytes))", "{{instance}}")]), 12, 8)
    layout.add(TimeSeries(
        title="Disk busy", unit="percentunit", stacking={"mode": "normal"},
        targets=[target(f"sum by (instance) (rate(node_disk_io_time_seconds_total{RATE}))\n"
                        f"/ scalar(count(node_disk_io_time_seconds_total))",
                        "{{instance}}")]), 12, 8)
    layout.add(TimeSeries(
        title="Network traffic", unit="Bps", stacking={"mode": "normal"},
        targets=[target(f"sum by (instance) (rate(node_network_receive_bytes_total{RATE}) "
                        f"+ rate(node_network_transmit_bytes_total{RATE}))",
                        "{{instance}}")]), 12, 8)
    layout.row("Saturation and errors")
    layout.add(TimeSeries(
        title="CPU pressure (PSI)", unit="percentunit",
        targets=[target(f"rate(node_pressure_cpu_waiting_seconds_total{RATE})",
                        "{{instance}}")]), 8, 8)
    layout.add(TimeSeries(
        title="Memory pressure (PSI)", unit="percentunit",
        targets=[target(f"rate(node_pressure_memory_waiting_seconds_total{RATE})",
                        "{{instance}}")]), 8, 8)
    layout.add(BarGauge(
        title="Fullest filesystem per node", format="percentunit", orientation="horizontal",
        displayMode="gradient", calc="lastNotNull", max=1,
        targets=[target(f"max by (instance) (1 - node_filesystem_avail_bytes"
                        f"{{{use.FS_FILTER}}} / node_filesystem_size_bytes{{{use.FS_FILTER}}})",
                        "{{instance}}", instant=True)]), 8, 8)
    return dashboard(
        title="redline / USE cluster", uid=USE_UID, tags=["redline", "use"],
        description="Every node's utilisation as a share of the cluster, saturation and "
                    "the fullest filesystems.",
        panels=layout.panels, variables=[],
        links=[{"title": "USE node", "type": "link", "url": f"/d/{use.UID}",
                "keepTime": True},
               {"title": "RED overview", "type": "link", "url": f"/d/{RED_UID}",
                "keepTime": True}])
