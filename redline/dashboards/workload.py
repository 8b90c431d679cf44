"""USE per workload: the CPU, memory and I/O of containers against their requests and limits,
on cAdvisor's names (kubelet's `/metrics/cadvisor`, or redline's `cgroups` collector on a host
without kubelet) and kube-state-metrics' (requests, restarts, owners; absent on a Docker host,
where those lines stay empty and the rest works)."""

from __future__ import annotations

from typing import Any

from grafanalib.core import TimeSeries

from redline import queries
from redline.dashboards.common import dashboard, query_variable, target
from redline.dashboards.layout import Layout
from redline.queries import CONTAINER, IN_CONTAINER, regex, series

UID = "redline-use-workload"
RATE = "$__rate_interval"
CHOSEN = [regex("namespace", "$namespace"), regex("pod", "$pod"),
          regex("container", "$container")]
LEGEND = "{{pod}} {{container}}"


def _chosen(expr: str) -> str:
    """`expr` for the chosen containers, of the chosen workload, one line per container."""
    return queries.of_workload(queries.aggregate("sum", CONTAINER, expr), "$workload")


def _lines(*exprs: tuple[str, str]) -> list[Any]:
    return [target(_chosen(expr), f"{LEGEND} {what}".rstrip(), ref=chr(ord("A") + index))
            for index, (expr, what) in enumerate(exprs)]


def _panel(title: str, unit: str, description: str, *exprs: tuple[str, str]) -> TimeSeries:
    return TimeSeries(title=title, unit=unit, description=description, targets=_lines(*exprs))


def build() -> dict[str, Any]:
    layout = Layout()
    layout.row("CPU")
    layout.add(_panel(
        "CPU usage against requests and limits", "short",
        "CPU cores used, requested (kube-state-metrics) and allowed by the CFS quota.",
        (queries.container_cpu_usage(CHOSEN, RATE), "used"),
        (queries.kube_resource("requests", "cpu", CHOSEN), "request"),
        (queries.container_cpu_limit(CHOSEN), "limit")), 12, 8)
    layout.add(_panel(
        "CPU throttled periods", "percentunit",
        "Share of CFS periods in which the container used up its quota and waited "
        "(saturation of the CPU limit).",
        (queries.container_cpu_throttled(CHOSEN, RATE), "")), 12, 8)
    layout.row("Memory")
    layout.add(_panel(
        "Memory working set against requests and limits", "bytes",
        "Working set (usage minus inactive file cache: what the OOM killer weighs), the "
        "request (kube-state-metrics) and the limit.",
        (queries.container_memory_working_set(CHOSEN), "working set"),
        (queries.kube_resource("requests", "memory", CHOSEN), "request"),
        (queries.container_memory_limit(CHOSEN), "limit")), 12, 8)
    layout.add(_panel(
        "OOM kills and restarts", "short",
        "Processes the kernel killed at the memory limit, and container restarts "
        "(kube-state-metrics).",
        (queries.container_oom_kills(CHOSEN, RATE), "OOM kills"),
        (queries.container_restarts(CHOSEN, RATE), "restarts")), 12, 8)
    layout.row("Pressure and I/O")
    layout.add(_panel(
        "Pressure stall (PSI)", "percentunit",
        "Share of time some task waited for CPU or memory, and all tasks stalled on memory.",
        (queries.container_pressure("cpu", "waiting", CHOSEN, RATE), "CPU waiting"),
        (queries.container_pressure("memory", "waiting", CHOSEN, RATE), "memory waiting"),
        (queries.container_pressure("memory", "stalled", CHOSEN, RATE), "memory stalled")),
        12, 8)
    layout.add(_panel(
        "Disk I/O", "Bps", "Bytes read and written by the container, all devices.",
        (queries.rate(series("container_fs_reads_bytes_total", IN_CONTAINER, CHOSEN), RATE),
         "read"),
        (queries.rate(series("container_fs_writes_bytes_total", IN_CONTAINER, CHOSEN), RATE),
         "written")), 12, 8)
    in_namespace = series("container_cpu_usage_seconds_total", IN_CONTAINER,
                          regex("namespace", "$namespace"))
    return dashboard(
        title="redline / USE per workload", uid=UID, tags=["redline", "use"],
        description="CPU, memory and I/O of containers against their requests and limits, "
                    "with throttling, pressure stalls, OOM kills and restarts (USE), from "
                    "kubelet's cAdvisor or redline's cgroups collector.",
        panels=layout.panels,
        variables=[
            query_variable("namespace", "Namespace", "label_values(" + series(
                "container_cpu_usage_seconds_total", IN_CONTAINER) + ", namespace)",
                include_all=True),
            query_variable("workload", "Workload", "label_values(" + series(
                "kube_pod_owner", regex("namespace", "$namespace")) + ", owner_name)",
                include_all=True),
            query_variable("pod", "Pod", f"label_values({in_namespace}, pod)",
                           include_all=True),
            query_variable("container", "Container", "label_values(" + series(
                "container_cpu_usage_seconds_total", IN_CONTAINER,
                regex("namespace", "$namespace"), regex("pod", "$pod")) + ", container)",
                include_all=True),
        ],
        links=[{"title": "USE node", "type": "dashboards", "tags": ["use"],
                "asDropdown": True},
               {"title": "Runbooks", "type": "link", "url": "docs/alerts.md",
                "targetBlank": True}],
    )
