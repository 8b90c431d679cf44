"""USE per workload: the CPU, memory and I/O of containers against their requests and limits,
on cAdvisor's names (kubelet's `/metrics/cadvisor`, or redline's `cgroups` collector on a host
without kubelet) and kube-state-metrics' (requests, restarts, owners; absent on a Docker host,
where those lines stay empty and the rest works)."""

from __future__ import annotations

from typing import Any

from grafanalib.core import TimeSeries

from redline import queries
from redline.dashboards.common import CLUSTER, cluster_variable, dashboard, query_variable, target
from redline.dashboards.layout import Layout
from redline.queries import DEFAULT, IN_CONTAINER, Grouping, regex, series

UID = "redline-use-workload"
RATE = "$__rate_interval"


class WorkloadQueries:
    """The containers chosen (cluster, namespace, pod, container variables), one line per
    container and cluster."""

    def __init__(self, grouping: Grouping = DEFAULT) -> None:
        self.grouping = grouping
        self.cluster = [grouping.chosen(CLUSTER)]
        self.chosen = [*self.cluster, regex("namespace", "$namespace"), regex("pod", "$pod"),
                       regex("container", "$container")]
        self.legend = f"{{{{pod}}}} {{{{container}}}} {{{{{grouping.cluster}}}}}"

    def of_workload(self, expr: str) -> str:
        """`expr` for the chosen containers, of the chosen workload."""
        return queries.of_workload(queries.aggregate("sum", self.grouping.container, expr),
                                   "$workload", self.cluster, self.grouping.pod)

    def lines(self, *exprs: tuple[str, str]) -> list[Any]:
        return [target(self.of_workload(expr), f"{self.legend} {what}".rstrip(),
                       ref=chr(ord("A") + index))
                for index, (expr, what) in enumerate(exprs)]

    def panel(self, title: str, unit: str, description: str, *exprs: tuple[str, str]
              ) -> TimeSeries:
        return TimeSeries(title=title, unit=unit, description=description,
                          targets=self.lines(*exprs))


def build(grouping: Grouping = DEFAULT) -> dict[str, Any]:
    q = WorkloadQueries(grouping)
    chosen = q.chosen
    layout = Layout()
    layout.row("CPU")
    layout.add(q.panel(
        "CPU usage against requests and limits", "short",
        "CPU cores used, requested (kube-state-metrics) and allowed by the CFS quota.",
        (queries.container_cpu_usage(chosen, RATE), "used"),
        (queries.kube_resource("requests", "cpu", chosen), "request"),
        (queries.container_cpu_limit(chosen), "limit")), 12, 8)
    layout.add(q.panel(
        "CPU throttled periods", "percentunit",
        "Share of CFS periods in which the container used up its quota and waited "
        "(saturation of the CPU limit).",
        (queries.container_cpu_throttled(chosen, RATE), "")), 12, 8)
    layout.row("Memory")
    layout.add(q.panel(
        "Memory working set against requests and limits", "bytes",
        "Working set (usage minus inactive file cache: what the OOM killer weighs), the "
        "request (kube-state-metrics) and the limit.",
        (queries.container_memory_working_set(chosen), "working set"),
        (queries.kube_resource("requests", "memory", chosen), "request"),
        (queries.container_memory_limit(chosen), "limit")), 12, 8)
    layout.add(q.panel(
        "OOM kills and restarts", "short",
        "Processes the kernel killed at the memory limit, and container restarts "
        "(kube-state-metrics).",
        (queries.container_oom_kills(chosen, RATE), "OOM kills"),
        (queries.container_restarts(chosen, RATE), "restarts")), 12, 8)
    layout.row("Pressure and I/O")
    layout.add(q.panel(
        "Pressure stall (PSI)", "percentunit",
        "Share of time some task waited for CPU or memory, and all tasks stalled on memory.",
        (queries.container_pressure("cpu", "waiting", chosen, RATE), "CPU waiting"),
        (queries.container_pressure("memory", "waiting", chosen, RATE), "memory waiting"),
        (queries.container_pressure("memory", "stalled", chosen, RATE), "memory stalled")),
        12, 8)
    layout.add(q.panel(
        "Disk I/O", "Bps", "Bytes read and written by the container, all devices.",
        (queries.rate(series("container_fs_reads_bytes_total", IN_CONTAINER, chosen), RATE),
         "read"),
        (queries.rate(series("container_fs_writes_bytes_total", IN_CONTAINER, chosen), RATE),
         "written")), 12, 8)
    usage = "container_cpu_usage_seconds_total"
    in_namespace = series(usage, IN_CONTAINER, q.cluster, regex("namespace", "$namespace"))
    return dashboard(
        title="redline / USE per workload", uid=UID, tags=["redline", "use"],
        description="CPU, memory and I/O of containers against their requests and limits, "
                    "with throttling, pressure stalls, OOM kills and restarts (USE), from "
                    "kubelet's cAdvisor or redline's cgroups collector.",
        panels=layout.panels,
        variables=[
            cluster_variable(grouping, series(usage, IN_CONTAINER)),
            query_variable("namespace", "Namespace", "label_values(" + series(
                usage, IN_CONTAINER, q.cluster) + ", namespace)", include_all=True),
            query_variable("workload", "Workload", "label_values(" + series(
                "kube_pod_owner", q.cluster, regex("namespace", "$namespace"))
                + ", owner_name)", include_all=True),
            query_variable("pod", "Pod", f"label_values({in_namespace}, pod)",
                           include_all=True),
            query_variable("container", "Container", "label_values(" + series(
                usage, IN_CONTAINER, q.cluster, regex("namespace", "$namespace"),
                regex("pod", "$pod")) + ", container)", include_all=True),
        ],
        links=[{"title": "USE node", "type": "dashboards", "tags": ["use"],
                "asDropdown": True, "includeVars": True},
               {"title": "Runbooks", "type": "link", "url": "docs/alerts.md",
                "targetBlank": True}],
    )
