"""The PromQL that dashboards, recording and alerting rules and `redline stat` share.

Pure functions from metric names, label matchers, grouping labels and a window to PromQL text.
Nothing here knows Grafana or rule files: a dashboard passes `$__rate_interval` as the window and
`$service` as a value, a rule passes `5m` and a service name.

- **Selectors** are built by `series(metric, *matchers)` from matchers (`eq`, `ne`, `regex`),
  never by hand in an f-string, so values are quoted and escaped in one place.
- **Grouping labels are parameters** (`by=SERVICE`, `by=("service_name", "http_route")`):
  `Grouping` is the one place that adds the label kept through every aggregation and every
  `on (...)` join, the `cluster` label that a central ruler over many Prometheus servers sees
  (their `external_labels`). Where no series has it, `by (cluster, ...)` is harmless, so one
  rule file serves both. `--cluster-label` names it otherwise: `Grouping("region")`.
- **Metric names are parameters**: `RequestMetrics` names one request histogram and its untimed
  counter; `HTTP_SERVER` and `HTTP_CLIENT` are today's, a gRPC or TCP one is another instance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from redline.exporters.instruments import format_bound
from redline.exporters.red import (
    CLIENT_DURATION,
    RPC_CLIENT_DURATION,
    RPC_SERVER_DURATION,
    SERVER_ACTIVE,
    SERVER_DURATION,
    SERVER_UNTIMED,
)

Labels = Sequence[str]
Matchers = Sequence[str]

# --- grouping labels: what every aggregation keeps ------------------------------------------

CLUSTER_LABEL = "cluster"  # kube-prometheus' and Mimir's name for it
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Labels the groupings use for something else: a cluster label named like one would merge them.
_TAKEN = ("service_name", "http_route", "instance", "job", "namespace", "pod", "container",
          "le", "slo", "source")


@dataclass(frozen=True)
class Grouping:
    """The labels each aggregation and each `on (...)` join keeps, the cluster label first."""

    cluster: str = CLUSTER_LABEL

    def __post_init__(self) -> None:
        if not _LABEL_NAME.fullmatch(self.cluster) or self.cluster.startswith("__"):
            raise ValueError(f"expected a Prometheus label name such as cluster or region, "
                             f"got {self.cluster!r}")
        if self.cluster in _TAKEN:
            raise ValueError(f"{self.cluster!r} is a label redline groups by already; name the "
                             f"label that tells clusters apart (cluster, region, ...)")

    @property
    def service(self) -> tuple[str, ...]:
        return (self.cluster, "service_name")

    @property
    def service_route(self) -> tuple[str, ...]:
        return (*self.service, "http_route")

    @property
    def service_method(self) -> tuple[str, ...]:
        """A gRPC method of a service: what a route is to HTTP."""
        return (*self.service, "rpc_service", "rpc_method")

    @property
    def node(self) -> tuple[str, ...]:
        return (self.cluster, "instance")

    @property
    def scrape_target(self) -> tuple[str, ...]:
        """What one scrape target is: the labels every series of one process has."""
        return (self.cluster, "instance", "job")

    @property
    def pod(self) -> tuple[str, ...]:
        return (self.cluster, "namespace", "pod")

    @property
    def container(self) -> tuple[str, ...]:
        return (*self.pod, "container")

    @property
    def only(self) -> tuple[str, ...]:
        """Per cluster, nothing else: a total that stays apart per cluster."""
        return (self.cluster,)

    def chosen(self, pattern: str) -> str:
        """The clusters a dashboard variable chose: a regex, so that `.*` (All) also keeps
        series without the label (one Prometheus without external_labels)."""
        return regex(self.cluster, pattern)


DEFAULT = Grouping()
SERVICE = DEFAULT.service
SERVICE_ROUTE = DEFAULT.service_route
NODE = DEFAULT.node
SCRAPE_TARGET = DEFAULT.scrape_target


# --- selectors -------------------------------------------------------------------------------

def _quote(value: str) -> str:
    """A PromQL double-quoted string's content: backslashes and quotes escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def eq(label: str, value: str) -> str:
    return f'{label}="{_quote(value)}"'


def ne(label: str, value: str) -> str:
    return f'{label}!="{_quote(value)}"'


def regex(label: str, pattern: str) -> str:
    """`label=~"pattern"`; `pattern` is RE2 as written (its backslashes are escaped here)."""
    return f'{label}=~"{_quote(pattern)}"'


def not_regex(label: str, pattern: str) -> str:
    return f'{label}!~"{_quote(pattern)}"'


def series(metric: str, *matchers: str | Matchers) -> str:
    """`metric{a="1",b!=""}` from matchers and sequences of matchers; empty ones are dropped,
    and the bare name is returned when none is left."""
    flat: list[str] = []
    for item in matchers:
        flat.extend([item] if isinstance(item, str) else item)
    kept = [m for m in flat if m]
    return metric + ("{" + ",".join(kept) + "}" if kept else "")


def any_of(metrics: Sequence[str], *matchers: str | Matchers) -> str:
    """`{__name__=~"a|b",...}`: the series of any of `metrics` (a dashboard variable listing
    the services of HTTP and gRPC metrics at once)."""
    return series("", regex("__name__", "|".join(re.escape(name) for name in metrics)),
                  *matchers)


def union(exprs: Sequence[str]) -> str:
    """Expressions over different series as one, `a or b or c ...`, as a balanced tree of
    parenthesised `or`s (`a` alone for one). A chain is evaluated as ((a or b) or c) ..., each
    `or` copying and hashing everything on its left: 1,000 terms took Prometheus 2.42 1.93 s
    as a chain, 0.17 s as a tree (bench_rules.py --before, #21). The rules keep the number of
    terms to the kinds of SLO, never the services: the engine's cost per node also grows with
    the number of nodes, whatever their shape (a tree of 1,000 terms 103 ms, of 2,000 453 ms)."""
    if not exprs:
        raise ValueError("union of no expressions")
    if len(exprs) == 1:
        return exprs[0]
    middle = len(exprs) // 2
    return "\nor\n".join(f"(\n{union(half)}\n)" for half in (exprs[:middle], exprs[middle:]))


def with_labels(expr: str, labels: dict[str, str]) -> str:
    """`expr` with constant `labels` set on every series it returns, in the order given: a
    label_replace each, over an empty source and regex (`$` starts a group reference in the
    replacement: `$$` is a `$`).

        label_replace(label_replace(
        expr,
        "a", "1", "", ""),
        "b", "2", "", "")"""
    if not labels:
        return expr
    tails = [f'"{name}", "{_quote(value.replace("$", "$$"))}", "", "")'
             for name, value in labels.items()]
    return "label_replace(" * len(tails) + "\n" + expr + ",\n" + ",\n".join(tails)


def by(labels: Labels) -> str:
    """` by (a, b)`, or nothing for no labels (aggregate everything)."""
    return f" by ({', '.join(labels)})" if labels else ""


def on(labels: Labels) -> str:
    """`on (a, b)`: the labels a binary operation matches on (a Grouping's, cluster first)."""
    return f"on ({', '.join(labels)})"


def rate(selector: str, window: str) -> str:
    return f"rate({selector}[{window}])"


def sum_rate(metric: str, matchers: Matchers, group: Labels, window: str) -> str:
    return aggregate("sum", group, rate(series(metric, matchers), window))


def aggregate(operator: str, group: Labels, expr: str) -> str:
    """`sum by (a) (expr)`, or `sum(expr)` over no labels."""
    return f"{operator}{by(group)} ({expr})" if group else f"{operator}({expr})"


# --- RED ---------------------------------------------------------------------------------------

ALL_SERVICES = ne("service_name", "")


@dataclass(frozen=True)
class RequestMetrics:
    """One kind of request: its duration histogram (base name, without _count/_bucket), the
    counter of requests known without a duration (or None), and the matcher of failed ones."""

    duration: str
    untimed: str | None = None
    error: str = ne("error_type", "")

    @property
    def count(self) -> str:
        return f"{self.duration}_count"

    @property
    def bucket(self) -> str:
        return f"{self.duration}_bucket"


    @property
    def request_counters(self) -> tuple[str, ...]:
        """Every metric that counts requests: the histogram's _count and the untimed one."""
        return (self.count,) if self.untimed is None else (self.count, self.untimed)


HTTP_SERVER = RequestMetrics(SERVER_DURATION, untimed=SERVER_UNTIMED)
HTTP_CLIENT = RequestMetrics(CLIENT_DURATION)
# gRPC calls: a call failed when error_type is set (server-fault statuses and transport
# failures; client-fault statuses such as NOT_FOUND are not errors, like 4xx).
GRPC_SERVER = RequestMetrics(RPC_SERVER_DURATION)
GRPC_CLIENT = RequestMetrics(RPC_CLIENT_DURATION)


def requests(metrics: RequestMetrics, matchers: Matchers, group: Labels, window: str) -> str:
    """Requests per second, timed (the histogram's _count) and untimed (access logs without a
    request time) together.

    Grouped, each side gets a `source` label before `or`, so `or` never drops a series that
    has the same labels in both, and the sum works when either metric is missing. Ungrouped,
    each side falls back to 0: a total is 0, not empty, for a service seen only one way."""
    if metrics.untimed is None:
        return sum_rate(metrics.count, matchers, group, window)
    if not group:
        return " + ".join(f"({sum_rate(name, matchers, (), window)} or vector(0))"
                          for name in (metrics.count, metrics.untimed))
    sides = [f'label_replace({rate(series(name, matchers), window)}, "source", "{source}", '
             f'"", "")' for name, source in ((metrics.count, "histogram"),
                                             (metrics.untimed, "untimed"))]
    return aggregate("sum", group, f"\n  {sides[0]}\n  or\n  {sides[1]}\n")


def errors(metrics: RequestMetrics, matchers: Matchers, group: Labels, window: str) -> str:
    """Failed requests per second, counted as `requests` counts them."""
    return requests(metrics, [*matchers, metrics.error], group, window)


def errors_or_zero(metrics: RequestMetrics, matchers: Matchers, group: Labels,
                   window: str) -> str:
    """`errors`, or 0 for a group with requests but no failed one (which has no error
    series): a clean service's error ratio is 0, not absent. Grouped, so each group keeps its
    labels, where `vector(0)` would have none."""
    return (f"({errors(metrics, matchers, group, window)})\nor\n"
            f"({requests(metrics, matchers, group, window)}) * 0")


def error_ratio(metrics: RequestMetrics, matchers: Matchers, group: Labels,
                window: str) -> str:
    """Failed requests over all requests: a ratio of sums over the same sources; 0 for a group
    without a failed request (not empty: a clean service shows 0%)."""
    return (f"({errors_or_zero(metrics, matchers, group, window)})\n/\n"
            f"({requests(metrics, matchers, group, window)})")


def latency_quantile(q: float, metrics: RequestMetrics, matchers: Matchers, group: Labels,
                     window: str) -> str:
    return (f"histogram_quantile({q:g}, "
            f"{sum_rate(metrics.bucket, matchers, ('le', *group), window)})")


def le_matcher(threshold: float) -> str:
    """The bucket at `threshold`, as redline writes `le` (0.25, 1.0) and as OpenTelemetry
    exporters do (1)."""
    written = format_bound(threshold)
    if threshold.is_integer():
        return regex("le", f"{written}|{int(threshold)}")
    return eq("le", written)


def route_regex(routes: Sequence[str]) -> str:
    """Route patterns (`/api/*`, `/users/{id}`) as one RE2 alternation (anchored by PromQL)."""
    alternatives = []
    for route in routes:
        alternatives.append("".join(
            ".*" if char == "*" else "\\" + char if char in r".+?()[]{}|^$\\" else char
            for char in route))
    return "|".join(alternatives)


def of_sidecars(expr: str, service_matchers: Matchers, target: Labels = SCRAPE_TARGET) -> str:
    """`expr` (a sidecar's self metric, which has no service_name) kept only for the scrape
    targets that export RED series of the chosen service.

    A sidecar is known by its scrape target: the inbound ambassador exports the route overflow
    count from start-up, the outbound one its client gauge after its first call. `group` is 1
    whatever the gauge's value (an idle service's in-flight gauge is 0). `target`: the labels
    of a scrape target (`Grouping.scrape_target`)."""
    identity = " or ".join(series(name, service_matchers) for name in (
        "redline_route_overflow_total", "http_server_active_requests",
        "http_client_active_requests"))
    return f"{expr}\n* {on(target)} group_left ()\n{aggregate('group', target, identity)}"


# --- autoscaling: one value per service, for KEDA, prometheus-adapter and the replay ---------

def active_requests(matchers: Matchers, group: Labels, window: str,
                    metric: str = SERVER_ACTIVE) -> str:
    """Requests in flight, each series averaged over `window`, then summed: the gauge read once
    per scrape jumps with every burst, and over the rate's window the average is what rate x
    latency gives (Little's law)."""
    return aggregate("sum", group, f"avg_over_time({series(metric, matchers)}[{window}])")


def latency_quantile_or_idle(q: float, metrics: RequestMetrics, matchers: Matchers,
                             group: Labels, window: str) -> str:
    """The latency quantile, or 0 for a group with series but no request in `window` (where
    histogram_quantile gives NaN): an idle service is not slow. A group without any series
    stays absent, so that a service Prometheus lost reads as missing, never as fast."""
    quantile = latency_quantile(q, metrics, matchers, group, window)
    idle = f"{sum_rate(metrics.count, matchers, group, window)} * 0"
    return f"({quantile} >= 0)\nor\n{idle}"


def scrape_targets(metric: str, matchers: Matchers, group: Labels, target_label: str) -> str:
    """How many distinct `target_label` values (a pod: `pod`, or `instance` where Prometheus
    scrapes without Kubernetes discovery) export `metric`, per group."""
    return aggregate("count", group, aggregate("count", (*group, target_label),
                                               series(metric, matchers)))


# --- USE ---------------------------------------------------------------------------------------

# Real filesystems: node_exporter's own and container runtimes' pseudo mounts have no fstype or
# mountpoint. The one filter the alerts, the dashboards and `redline stat` select with.
FILESYSTEM: tuple[str, ...] = (ne("fstype", ""), ne("mountpoint", ""))
CPU_IDLE = regex("mode", "idle|iowait|steal")
CPU_BUSY = not_regex("mode", "idle|iowait|steal")
ONE_PER_CPU = eq("mode", "idle")  # node_cpu_seconds_total has one idle series per CPU


def cpu_utilisation(matchers: Matchers, window: str, group: Labels | None = None) -> str:
    """1 - the idle share of every CPU, averaged over CPUs: `group=None` keeps every label but
    `cpu` (a recording rule), otherwise averaged by `group` (`()` for one node)."""
    idle = rate(series("node_cpu_seconds_total", matchers, CPU_IDLE), window)
    busy = f"sum without (mode) ({idle})"
    return "1 - " + (f"avg without (cpu) ({busy})" if group is None
                     else aggregate("avg", group, busy))


def memory_utilisation(matchers: Matchers) -> str:
    return (f"1 - {series('node_memory_MemAvailable_bytes', matchers)} / "
            f"{series('node_memory_MemTotal_bytes', matchers)}")


def pressure(resource: str, matchers: Matchers, window: str) -> str:
    """PSI: the share of time some task waited for `resource` (cpu, memory, io)."""
    return rate(series(f"node_pressure_{resource}_waiting_seconds_total", matchers), window)


def filesystem_used(matchers: Matchers) -> str:
    """Used share of each real filesystem."""
    return (f"1 - {series('node_filesystem_avail_bytes', matchers, FILESYSTEM)} / "
            f"{series('node_filesystem_size_bytes', matchers, FILESYSTEM)}")


# --- containers: kubelet's cAdvisor or redline's cgroups collector, and kube-state-metrics -----

CONTAINER = DEFAULT.container
POD = DEFAULT.pod
# Containers' own cgroups only: cAdvisor also exports pods' and slices' cgroups (container="",
# which would count each container twice in a sum) and, on older kubelets, pause containers
# ("POD"); redline labels container cgroups only.
IN_CONTAINER: tuple[str, ...] = (ne("container", ""), ne("container", "POD"))


def _in_container(metric: str, matchers: Matchers) -> str:
    return series(metric, IN_CONTAINER, matchers)


def container_cpu_usage(matchers: Matchers, window: str) -> str:
    """CPU cores used, per container series (kubelet's carry `cpu="total"`; divide by a
    container's other series `ignoring (cpu)`)."""
    return rate(_in_container("container_cpu_usage_seconds_total", matchers), window)


def container_cpu_limit(matchers: Matchers) -> str:
    """CPU cores of the CFS quota (absent without a quota)."""
    return (f"{_in_container('container_spec_cpu_quota', matchers)}\n/ "
            f"{_in_container('container_spec_cpu_period', matchers)}")


def container_cpu_throttled(matchers: Matchers, window: str, group: Labels | None = None
                            ) -> str:
    """The share of CFS periods in which the container was throttled: per series
    (`group=None`, a recording rule), or a ratio of sums by `group`."""
    throttled, periods = (
        rate(_in_container(f"container_cpu_cfs_{name}_total", matchers), window)
        for name in ("throttled_periods", "periods"))
    if group is None:
        return f"{throttled}\n/ {periods}"
    return f"{aggregate('sum', group, throttled)}\n/ {aggregate('sum', group, periods)}"


def container_memory_working_set(matchers: Matchers) -> str:
    return _in_container("container_memory_working_set_bytes", matchers)


def container_memory_limit(matchers: Matchers) -> str:
    """The memory limit, where there is one (cAdvisor reports none as 0)."""
    return f"{_in_container('container_spec_memory_limit_bytes', matchers)} > 0"


def container_pressure(resource: str, kind: str, matchers: Matchers, window: str) -> str:
    """PSI of a container: the share of time some task `waiting`, or all tasks `stalled`."""
    return rate(_in_container(f"container_pressure_{resource}_{kind}_seconds_total", matchers),
                window)


def container_oom_kills(matchers: Matchers, window: str) -> str:
    return f"increase({_in_container('container_oom_events_total', matchers)}[{window}])"


def kube_resource(kind: str, resource: str, matchers: Matchers) -> str:
    """kube-state-metrics' container `requests` or `limits` of `resource` (cpu in cores,
    memory in bytes)."""
    return series(f"kube_pod_container_resource_{kind}", eq("resource", resource), matchers)


def container_restarts(matchers: Matchers, window: str) -> str:
    return f"increase({series('kube_pod_container_status_restarts_total', matchers)}[{window}])"


def of_workload(expr: str, workload: str, matchers: Matchers = (), pod: Labels = POD) -> str:
    """`expr` without the pods whose owner (kube-state-metrics' kube_pod_owner) is known and
    does not match the `workload` pattern: a pod without kube-state-metrics (a Docker host)
    or without an owner record is kept, and `.*` keeps everything. `pod`: the labels of a pod
    (`Grouping.pod`)."""
    return (f"{expr}\nunless {on(pod)}\n"
            f"{series('kube_pod_owner', not_regex('owner_name', workload), matchers)}")
