"""Container USE rules under promtool: each alert fires at its level and stays silent just below,
on kubelet's cAdvisor series (cpu="total" on usage) and on redline's (a Docker host, no pod)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.alerts.conftest import gauge, promtool_test

WHERE = 'instance="node-1:9100",job="node"'
APP = {"instance": "node-1:9100", "job": "node", "id": "/kubepods/burstable/pod1/c1",
       "namespace": "shop", "pod": "web-1", "container": "app"}
LABELS = ",".join(f'{key}="{value}"' for key, value in APP.items())
DOCKER = {"instance": "node-1:9100", "job": "node", "id": "/docker/d1",
          "container": "redline-demo-app-1"}
DOCKER_LABELS = ",".join(f'{key}="{value}"' for key, value in DOCKER.items())
WHO = "app of shop/web-1"
N = 40  # minutes of samples


def expected(name: str, summary: str, description: str, labels: dict[str, str]
             ) -> dict[str, Any]:
    return {"exp_labels": {"severity": "warning", **labels},
            "exp_annotations": {"summary": summary, "description": description,
                                "runbook_url": f"docs/alerts.md#{name.lower()}"}}


def cpu(throttled_share: float, quota_used: float, usage_labels: str = LABELS
        ) -> list[dict[str, str]]:
    """A container with a quota of 0.1 CPU (10 ms per 100 ms: 600 periods a minute)."""
    periods = 600
    return [
        gauge("container_spec_cpu_quota", LABELS, f"10000x{N}"),
        gauge("container_spec_cpu_period", LABELS, f"100000x{N}"),
        gauge("container_cpu_cfs_periods_total", LABELS, f"0+{periods}x{N}"),
        gauge("container_cpu_cfs_throttled_periods_total", LABELS,
              f"0+{periods * throttled_share:g}x{N}"),
        gauge("container_cpu_usage_seconds_total", usage_labels,
              f"0+{60 * 0.1 * quota_used:g}x{N}"),
    ]


def test_cpu_throttling_fires_only_at_the_limit(rule_dir: Path) -> None:
    name = "RedlineContainerCPUThrottling"
    # kubelet's usage series has cpu="total", its quota does not: still one container
    kubelet_usage = f'{LABELS},cpu="total"'
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": cpu(0.3, 0.9, kubelet_usage),
         "alert_rule_test": [
             {"eval_time": "25m", "alertname": name, "exp_alerts": [expected(
                 name, f"{WHO} is throttled at its CPU limit",
                 f"{WHO} was throttled in 30% of its CFS periods over the last 5 minutes while "
                 f"using more than 80% of its CPU limit.", APP)]},
             {"eval_time": "15m", "alertname": name, "exp_alerts": []},  # not for 15m yet
         ]},
        # just below either level, and the known false positive: throttled bursts of a
        # container that uses half of its quota on average
        *({"interval": "1m", "input_series": cpu(throttled, used),
           "alert_rule_test": [{"eval_time": "30m", "alertname": name, "exp_alerts": []}]}
          for throttled, used in ((0.24, 0.9), (0.3, 0.79), (0.5, 0.5))),
    ])


def memory(working_set_share: float, limit: float = 1_000_000) -> list[dict[str, str]]:
    return [
        gauge("container_memory_working_set_bytes", LABELS,
              f"{limit * working_set_share if limit else 900_000:g}x{N}"),
        gauge("container_spec_memory_limit_bytes", LABELS, f"{limit:g}x{N}"),
    ]


def test_memory_near_the_limit(rule_dir: Path) -> None:
    name = "RedlineContainerMemoryNearLimit"
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": memory(0.95),
         "alert_rule_test": [{"eval_time": "20m", "alertname": name, "exp_alerts": [expected(
             name, f"{WHO} is close to its memory limit",
             f"The working set of {WHO} is 95% of its memory limit; at the limit the kernel "
             f"reclaims and then OOM-kills it.", APP)]}]},
        {"interval": "1m", "input_series": memory(0.89),
         "alert_rule_test": [{"eval_time": "20m", "alertname": name, "exp_alerts": []}]},
        {"interval": "1m", "input_series": memory(1, limit=0),  # no limit: cAdvisor's 0
         "alert_rule_test": [{"eval_time": "20m", "alertname": name, "exp_alerts": []}]},
    ])


def test_an_oom_kill_on_kubernetes_and_on_a_docker_host(rule_dir: Path) -> None:
    name = "RedlineContainerOOMKilled"
    pod_cgroup = f'{WHERE},id="/kubepods/burstable/pod1",namespace="shop",pod="web-1"'
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": [
            gauge("container_oom_events_total", LABELS, f"0 0 1x{N}"),
            gauge("container_oom_events_total", DOCKER_LABELS, f"0 0 0 2x{N}"),
            # v2's memory.events counts the kill in the pod's cgroup too: not a second alert
            gauge("container_oom_events_total", pod_cgroup, f"0 0 1x{N}"),
         ],
         "alert_rule_test": [
             {"eval_time": "4m", "alertname": name, "exp_alerts": [
                 expected(name, f"{WHO} was OOM-killed",
                          f"The kernel killed a process of {WHO} for memory 1 times in the "
                          f"last 5 minutes (its memory limit).", APP),
                 expected(name, "redline-demo-app-1 was OOM-killed",
                          "The kernel killed a process of redline-demo-app-1 for memory 2 "
                          "times in the last 5 minutes (its memory limit).", DOCKER)]},
             {"eval_time": "12m", "alertname": name, "exp_alerts": []},  # no new kill
         ]},
    ])


def test_memory_stalls(rule_dir: Path) -> None:
    name = "RedlineContainerMemoryStalls"
    promtool_test(rule_dir, [
        {"interval": "1m", "input_series": [
            gauge("container_pressure_memory_stalled_seconds_total", LABELS, f"0+3.6x{N}")],
         "alert_rule_test": [{"eval_time": "25m", "alertname": name, "exp_alerts": [expected(
             name, f"{WHO} stalls on memory",
             f"Every task of {WHO} was stalled on memory 6% of the time over the last 5 "
             f"minutes (PSI full).", APP)]}]},
        {"interval": "1m", "input_series": [
            gauge("container_pressure_memory_stalled_seconds_total", LABELS, f"0+2.4x{N}")],
         "alert_rule_test": [{"eval_time": "25m", "alertname": name, "exp_alerts": []}]},
    ])
