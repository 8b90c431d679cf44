"""The cgroups collector on this machine's real cgroup v1 hierarchies: a CPU quota throttles a
busy loop, a memory limit OOM-kills a process that exceeds it, and both show in the series."""

from __future__ import annotations

import sys
import time

from prometheus_client import CollectorRegistry

from redline.exporters.node.collectors import NodeCollector, Roots
from tests.exporters.node.cgroup_sandbox import BUSY_LOOP, CGROUPFS, cgroup, running_in

QUOTA_US, PERIOD_US = 10_000, 100_000  # 10 ms of CPU per 100 ms: a tenth of a CPU


def scraper() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    # depth 1: the test's cgroups are right below the root; nothing deeper is read
    registry.register(NodeCollector(Roots(cgroupfs=str(CGROUPFS), cgroups_depth=1),
                                    ["cgroups"]))
    return registry


def sample(registry: CollectorRegistry, name: str, path: str) -> float:
    value = registry.get_sample_value(name, {"id": path})
    assert value is not None, f"no {name} for {path}"
    return value


def test_a_cpu_quota_throttles_a_busy_loop() -> None:
    controllers = ("cpu", "cpuacct")
    with cgroup("redline-test-cpu", controllers, {
            "cpu/cpu.cfs_period_us": str(PERIOD_US),
            "cpu/cpu.cfs_quota_us": str(QUOTA_US)}) as path, \
            running_in(path, controllers, BUSY_LOOP):
        registry = scraper()
        time.sleep(0.5)  # past the first periods
        names = ("container_cpu_usage_seconds_total", "container_cpu_cfs_periods_total",
                 "container_cpu_cfs_throttled_periods_total",
                 "container_cpu_cfs_throttled_seconds_total")
        before = {name: sample(registry, name, path) for name in names}
        started = time.monotonic()
        time.sleep(2.0)
        after = {name: sample(registry, name, path) for name in names}
        elapsed = time.monotonic() - started
        assert sample(registry, "container_spec_cpu_quota", path) == QUOTA_US
        assert sample(registry, "container_spec_cpu_period", path) == PERIOD_US
    grew = {name: after[name] - before[name] for name in names}
    periods = grew["container_cpu_cfs_periods_total"]
    assert periods >= 0.8 * elapsed / (PERIOD_US / 1e6), grew  # ~10 a second
    # a busy loop uses its whole quota in every period, and waits out the rest
    assert grew["container_cpu_cfs_throttled_periods_total"] >= 0.8 * periods, grew
    assert grew["container_cpu_cfs_throttled_seconds_total"] > 0, grew
    cores = grew["container_cpu_usage_seconds_total"] / elapsed
    assert 0.6 * QUOTA_US / PERIOD_US <= cores <= 1.2 * QUOTA_US / PERIOD_US, grew


def test_a_memory_limit_oom_kills_and_is_counted() -> None:
    limit = 48 << 20
    hog = [sys.executable, "-c", "data = b'x' * (256 << 20)"]  # written, so really resident
    with cgroup("redline-test-memory", ("memory",),
                {"memory/memory.limit_in_bytes": str(limit)}) as path:
        registry = scraper()
        assert sample(registry, "container_oom_events_total", path) == 0
        assert sample(registry, "container_spec_memory_limit_bytes", path) == limit
        with running_in(path, ("memory",), hog) as proc:
            returncode = proc.wait(timeout=10)
        assert returncode == -9, f"expected the OOM killer's SIGKILL, got {returncode}"
        assert sample(registry, "container_oom_events_total", path) == 1
        assert sample(registry, "container_memory_working_set_bytes", path) <= limit
