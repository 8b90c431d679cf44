"""USE recording rules and alerts for containers, on cAdvisor's names (kubelet's built-in
cAdvisor, or redline's `cgroups` collector on hosts without kubelet). Every rule keeps each
container's own labels (id, namespace, pod, container, the scrape's instance and a `cluster`
label when there is one); the reasons for each threshold are in docs/alerts.md.
"""

from __future__ import annotations

from redline import queries
from redline.alerts.rules import (
    VALUE_0F,
    VALUE_PERCENT,
    AlertingRule,
    RecordingRule,
    alert,
    recording,
    template,
)

CPU_USAGE = "container:use_cpu_usage:rate5m"
CPU_QUOTA_USED = "container:use_cpu_quota_used:ratio_rate5m"
CPU_THROTTLED = "container:use_cpu_throttled:ratio_rate5m"
MEMORY_LIMIT_USED = "container:use_memory_limit_used:ratio"
MEMORY_STALLED = "container:use_memory_stalled_psi:ratio_rate5m"

RECORDING: list[RecordingRule] = [
    recording(CPU_USAGE, queries.container_cpu_usage((), "5m")),
    # kubelet's usage series carry cpu="total", the quota's do not
    recording(CPU_QUOTA_USED, f"{CPU_USAGE}\n/ ignoring (cpu)\n"
                              f"({queries.container_cpu_limit(())})"),
    recording(CPU_THROTTLED, queries.container_cpu_throttled((), "5m")),
    recording(MEMORY_LIMIT_USED, f"{queries.container_memory_working_set(())}\n/\n"
                                 f"({queries.container_memory_limit(())})"),
    recording(MEMORY_STALLED, queries.container_pressure("memory", "stalled", (), "5m")),
]

# Throttling that costs latency: CFS throttled a quarter of the periods (kubernetes-mixin's
# CPUThrottlingHigh level) while the container used most of its quota on average. Throttling
# with low average usage is a burst inside one period (many threads), a known false positive
# of CPUThrottlingHigh that no longer fires here.
THROTTLED_ABOVE = 0.25
QUOTA_USED_ABOVE = 0.8
MEMORY_LIMIT_USED_ABOVE = 0.9
MEMORY_STALLED_ABOVE = 0.05


def alert_rules(runbook_url: str) -> list[AlertingRule]:
    # "app of shop/web-1" in Kubernetes, "app" on a Docker host (no pod)
    who = (template("$labels.container")
           + "{{ if $labels.pod }} of {{ $labels.namespace }}/{{ $labels.pod }}{{ end }}")
    percent = template(VALUE_PERCENT)
    return [
        alert("RedlineContainerCPUThrottling",
              f"{CPU_THROTTLED} > {THROTTLED_ABOVE:g}\nand\n"
              f"{CPU_QUOTA_USED} > {QUOTA_USED_ABOVE:g}",
              for_="15m", severity="warning",
              summary=f"{who} is throttled at its CPU limit",
              description=f"{who} was throttled in {percent} of its CFS periods over the last 5 "
                          f"minutes while using more than {QUOTA_USED_ABOVE:.0%} of its CPU "
                          f"limit.", runbook_url=runbook_url),
        alert("RedlineContainerMemoryNearLimit",
              f"{MEMORY_LIMIT_USED} > {MEMORY_LIMIT_USED_ABOVE:g}", for_="15m",
              severity="warning", summary=f"{who} is close to its memory limit",
              description=f"The working set of {who} is {percent} of its memory limit; at the "
                          f"limit the kernel reclaims and then OOM-kills it.",
              runbook_url=runbook_url),
        alert("RedlineContainerOOMKilled",
              f"{queries.container_oom_kills((), '5m')} > 0", for_="0m", severity="warning",
              summary=f"{who} was OOM-killed",
              description=f"The kernel killed a process of {who} for memory "
                          f"{template(VALUE_0F)} times in the last 5 minutes (its memory limit).",
              runbook_url=runbook_url),
        alert("RedlineContainerMemoryStalls",
              f"{MEMORY_STALLED} > {MEMORY_STALLED_ABOVE:g}", for_="15m", severity="warning",
              summary=f"{who} stalls on memory",
              description=f"Every task of {who} was stalled on memory {percent} of the time "
                          f"over the last 5 minutes (PSI full).", runbook_url=runbook_url),
    ]
