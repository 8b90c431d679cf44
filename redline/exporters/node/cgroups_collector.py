"""The `cgroups` collector: per-container USE with cAdvisor's names, read from the host's cgroup
mount at scrape time (cgroup v2, or the v1 cpu, cpuacct, memory and blkio hierarchies).

Off by default: in a Kubernetes cluster kubelet's built-in cAdvisor already exports these series
(`/metrics/cadvisor`), and a second copy would double every sum. It is for hosts without
kubelet: Docker and docker-compose hosts, plain servers (systemd services are cgroups too).

Bounds, so that a node's series stay countable (docs/node-exporter.md):
- `Roots.cgroups_depth`: cgroups more than this many levels below the root are not walked
  (kubelet's containers are 3 or 4 levels down, Docker's 2);
- `Roots.cgroups_max`: at most this many cgroups per scrape, the shallowest first (a node's
  slices and pods before a flood of deep ones), the rest counted in
  `redline_node_exporter_cgroups{state="over_limit"}`;
- pods' sandbox (pause) containers are not exported when the runtime's files say which they
  are, and only container cgroups carry `namespace`, `pod` and `container`: a pod's or a
  slice's cgroup has `id` only, so a sum by pod over `container!=""` counts each container once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from redline.exporters.node import cgroups
from redline.exporters.node.cgroups import (
    MICROSECONDS,
    NANOSECONDS,
    CgroupUsage,
    Identity,
    parse_keyed,
    parse_limit,
)
from redline.exporters.node.procfs import parse_pressure
from redline.exporters.node.roots import Families, Roots, read

V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "blkio")
T = TypeVar("T")


@dataclass(frozen=True)
class Hierarchy:
    """Where a cgroup's files are: one directory (v2), or one per v1 controller plus, on a
    hybrid host, the unified (v2) tree that holds the same paths' pressure files."""

    unified: bool
    directories: dict[str, str]  # controller -> mount ("" -> the v2 root)
    pressure: str | None = None

    def path(self, controller: str, cgroup: str) -> str | None:
        base = self.directories.get("" if self.unified else controller)
        return None if base is None else os.path.join(base, cgroup.lstrip("/"))


def hierarchy(cgroupfs: str) -> Hierarchy:
    if os.path.exists(os.path.join(cgroupfs, "cgroup.controllers")):
        return Hierarchy(True, {"": cgroupfs}, cgroupfs)
    directories = {name: os.path.join(cgroupfs, name) for name in V1_CONTROLLERS
                   if os.path.isdir(os.path.join(cgroupfs, name))}
    if not directories:
        raise ValueError(f"{cgroupfs}: neither cgroup v2 (cgroup.controllers) nor cgroup v1 "
                         f"controller directories ({', '.join(V1_CONTROLLERS)})")
    unified = os.path.join(cgroupfs, "unified")
    return Hierarchy(False, directories, unified if os.path.isdir(unified) else None)


def walk(base: str, depth: int) -> set[str]:
    """Cgroup paths (`/`, `/a`, `/a/b`) under `base`, at most `depth` levels down."""
    found = {"/"}
    stack = [("/", base, 0)]
    while stack:
        cgroup, directory, level = stack.pop()
        if level >= depth:
            continue
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue  # removed while walking: a container that just stopped
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                child = f"{cgroup.rstrip('/')}/{entry.name}"
                found.add(child)
                stack.append((child, entry.path, level + 1))
    return found


def _read_small(path: str) -> str:
    """A cgroup file, by two system calls: they are a few hundred bytes (memory.stat ~1.5 kB,
    well under one read), and a text file object per file costs more than the read itself
    (a third of a 200-cgroup scrape)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        return os.read(descriptor, 1 << 16).decode("utf-8", "replace")
    finally:
        os.close(descriptor)


def _optional(path: str | None, name: str, parse: Callable[[str], T]) -> T | None:
    """A file's parsed value, or None when the cgroup has no such file (or is gone)."""
    if path is None:
        return None
    try:
        text = _read_small(os.path.join(path, name))
    except OSError:
        return None
    return parse(text)


def _keyed(path: str | None, name: str) -> dict[str, float]:
    return _optional(path, name, lambda text: parse_keyed(text, name)) or {}


def _number(path: str | None, name: str) -> float | None:
    return _optional(path, name, lambda text: parse_limit(text, name))


def _memory(usage: CgroupUsage, current: float | None, limit: float | None,
            stat: dict[str, float], inactive: str, rss: str, cache: str) -> None:
    usage.memory_usage, usage.memory_limit = current, limit
    if current is not None:
        usage.memory_working_set = cgroups.working_set(current, stat.get(inactive, 0.0))
    usage.memory_rss, usage.memory_cache = stat.get(rss), stat.get(cache)


def _pressure(usage: CgroupUsage, directory: str | None) -> None:
    for resource in ("cpu", "memory", "io"):
        totals = _optional(directory, f"{resource}.pressure", parse_pressure)
        if totals is not None:
            usage.pressure[resource] = totals


def read_v2(directory: str) -> CgroupUsage:
    usage = CgroupUsage()
    cpu = _keyed(directory, "cpu.stat")
    if "usage_usec" in cpu:
        usage.cpu_seconds = cpu["usage_usec"] / MICROSECONDS
        usage.cpu_user_seconds = cpu.get("user_usec", 0.0) / MICROSECONDS
        usage.cpu_system_seconds = cpu.get("system_usec", 0.0) / MICROSECONDS
    quota_period = _optional(directory, "cpu.max", cgroups.parse_cpu_max)
    if quota_period is not None:
        usage.cpu_quota_us, usage.cpu_period_us = quota_period
        if usage.cpu_quota_us is not None and "nr_periods" in cpu:
            usage.cfs_periods = cpu["nr_periods"]
            usage.cfs_throttled_periods = cpu.get("nr_throttled", 0.0)
            usage.cfs_throttled_seconds = cpu.get("throttled_usec", 0.0) / MICROSECONDS
    _memory(usage, _number(directory, "memory.current"), _number(directory, "memory.max"),
            _keyed(directory, "memory.stat"), "inactive_file", "anon", "file")
    usage.oom_kills = _keyed(directory, "memory.events").get("oom_kill")
    _pressure(usage, directory)
    usage.io = _optional(directory, "io.stat", cgroups.parse_io_stat) or {}
    return usage


def read_v1(tree: Hierarchy, cgroup: str) -> CgroupUsage:
    usage = CgroupUsage()
    cpuacct = tree.path("cpuacct", cgroup)
    total = _optional(cpuacct, "cpuacct.usage", float)
    if total is not None:
        usage.cpu_seconds = total / NANOSECONDS
        user, system = (_optional(cpuacct, f"cpuacct.usage_{n}", float) for n in ("user", "sys"))
        if user is not None and system is not None:  # ns, finer than cpuacct.stat's ticks
            usage.cpu_user_seconds, usage.cpu_system_seconds = (
                user / NANOSECONDS, system / NANOSECONDS)
        else:
            usage.cpu_user_seconds, usage.cpu_system_seconds = cgroups.cpuacct_ticks(
                _keyed(cpuacct, "cpuacct.stat"))
    cpu = tree.path("cpu", cgroup)
    quota = _optional(cpu, "cpu.cfs_quota_us", float)
    usage.cpu_period_us = _optional(cpu, "cpu.cfs_period_us", float)
    if quota is not None and quota > 0:
        usage.cpu_quota_us = quota
        stat = _keyed(cpu, "cpu.stat")
        usage.cfs_periods = stat.get("nr_periods")
        usage.cfs_throttled_periods = stat.get("nr_throttled")
        if "throttled_time" in stat:
            usage.cfs_throttled_seconds = stat["throttled_time"] / NANOSECONDS
    memory = tree.path("memory", cgroup)
    _memory(usage, _number(memory, "memory.usage_in_bytes"),
            _number(memory, "memory.limit_in_bytes"), _keyed(memory, "memory.stat"),
            "total_inactive_file", "total_rss", "total_cache")
    usage.oom_kills = _keyed(memory, "memory.oom_control").get("oom_kill")
    if tree.pressure is not None:  # hybrid host: the same path in the unified tree
        _pressure(usage, os.path.join(tree.pressure, cgroup.lstrip("/")))
    blkio = tree.path("blkio", cgroup)
    for name in ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"):
        io = _optional(blkio, name, cgroups.parse_blkio)
        if io is not None:
            usage.io = io
            break
    return usage


# Where each runtime keeps a container's config, below the host's root (--rootfs).
_RUNTIME_FILES: dict[str, tuple[str, ...]] = {
    "containerd": ("run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json",),
    "crio": ("run/containers/storage/overlay-containers/{id}/userdata/config.json",),
    "docker": ("var/lib/docker/containers/{id}/config.v2.json",),
}


def identity(roots: Roots, cgroup: str) -> Identity:
    """The names the runtime gives the container in `cgroup`; an empty Identity for a cgroup
    that is no container. A plain Docker container whose config cannot be read (it is
    root's: a non-root exporter) is named by its short id, as `docker ps` shows it; a
    Kubernetes container is not (kube-state-metrics joins on its name, not its id)."""
    known = cgroups.path_identity(cgroup)
    if not known.container_id:
        return Identity()
    runtimes = [known.runtime] if known.runtime else list(_RUNTIME_FILES)
    for runtime in runtimes:
        for template in _RUNTIME_FILES[runtime]:
            try:
                text = read(roots.root(template.format(id=known.container_id)))
            except OSError:
                continue
            if runtime == "docker":
                name, labels = cgroups.parse_docker_config(text)
                return cgroups.runtime_identity(labels, name)
            return cgroups.runtime_identity(cgroups.parse_oci_annotations(text))
    if known.runtime == "docker" and not known.pod_uid:
        return Identity(container=known.container_id[:12])
    return Identity()


def _device(roots: Roots, major_minor: str) -> str:
    """`/dev/sda` for `8:0`, as cAdvisor labels devices; `8:0` if sysfs does not say."""
    try:
        return "/dev/" + os.path.basename(os.readlink(roots.sys("dev", "block", major_minor)))
    except OSError:
        return major_minor


@dataclass
class _Family:
    kind: str
    name: str
    help: str
    samples: list[Sample]


# (attribute of CgroupUsage, kind, name, help), in exposition order
_SCALARS = (
    ("cpu_seconds", "counter", "container_cpu_usage_seconds",
     "Cumulative cpu time consumed in seconds."),
    ("cpu_user_seconds", "counter", "container_cpu_user_seconds",
     "Cumulative user cpu time consumed in seconds."),
    ("cpu_system_seconds", "counter", "container_cpu_system_seconds",
     "Cumulative system cpu time consumed in seconds."),
    ("cfs_periods", "counter", "container_cpu_cfs_periods",
     "Number of elapsed enforcement period intervals."),
    ("cfs_throttled_periods", "counter", "container_cpu_cfs_throttled_periods",
     "Number of throttled period intervals."),
    ("cfs_throttled_seconds", "counter", "container_cpu_cfs_throttled_seconds",
     "Total time duration the container has been throttled."),
    ("cpu_quota_us", "gauge", "container_spec_cpu_quota", "CPU quota of the container."),
    ("cpu_period_us", "gauge", "container_spec_cpu_period", "CPU period of the container."),
    ("memory_usage", "gauge", "container_memory_usage_bytes",
     "Current memory usage in bytes, including all memory regardless of when it was "
     "accessed"),
    ("memory_working_set", "gauge", "container_memory_working_set_bytes",
     "Current working set in bytes."),
    ("memory_rss", "gauge", "container_memory_rss", "Size of RSS in bytes."),
    ("memory_cache", "gauge", "container_memory_cache",
     "Number of bytes of page cache memory."),
    ("memory_limit", "gauge", "container_spec_memory_limit_bytes",
     "Memory limit for the container."),
    ("oom_kills", "counter", "container_oom_events",
     "Count of out of memory events observed for the container"),
)
_PRESSURE_HELP = {"cpu": "CPU", "memory": "memory", "io": "IO"}


def _families() -> dict[str, _Family]:
    built = {name: _Family(kind, name, text, []) for _, kind, name, text in _SCALARS}
    for resource, word in _PRESSURE_HELP.items():
        for kind, verb in (("waiting", "waited"), ("stalled", "stalled")):
            name = f"container_pressure_{resource}_{kind}_seconds"
            built[name] = _Family("counter", name, f"Total time duration tasks in the "
                                  f"container have {verb} due to {word} congestion.", [])
    for direction, word in (("reads", "read"), ("writes", "written")):
        name = f"container_fs_{direction}_bytes"
        built[name] = _Family("counter", name, f"Cumulative count of bytes {word}", [])
    return built


def _labels(cgroup: str, who: Identity) -> dict[str, str]:
    labels = {"id": cgroup}
    for key in ("namespace", "pod", "container"):
        value = getattr(who, key)
        if value:
            labels[key] = value
    return labels


def _add(families: dict[str, _Family], roots: Roots, labels: dict[str, str],
         usage: CgroupUsage) -> None:
    for attribute, _, name, _ in _SCALARS:
        value = getattr(usage, attribute)
        if value is not None:
            family = families[name]
            family.samples.append(Sample(_sample_name(family), labels, value))
    for resource, totals in usage.pressure.items():
        for kernel, kind in (("some", "waiting"), ("full", "stalled")):
            if kernel in totals:
                family = families[f"container_pressure_{resource}_{kind}_seconds"]
                family.samples.append(Sample(_sample_name(family), labels, totals[kernel]))
    for major_minor, (read_bytes, written) in usage.io.items():
        with_device = {**labels, "device": _device(roots, major_minor)}
        for name, value in (("container_fs_reads_bytes", read_bytes),
                            ("container_fs_writes_bytes", written)):
            families[name].samples.append(Sample(f"{name}_total", with_device, value))


def _sample_name(family: _Family) -> str:
    return f"{family.name}_total" if family.kind == "counter" else family.name


def collect(roots: Roots) -> Families:
    tree = hierarchy(roots.cgroupfs)
    found: set[str] = set()
    for directory in {os.path.realpath(d) for d in tree.directories.values()}:
        found |= walk(directory, roots.cgroups_depth)
    ordered = sorted(found, key=lambda path: (path.count("/") if path != "/" else 0, path))
    states = dict.fromkeys(("exported", "over_limit", "sandbox", "unreadable"), 0)
    states["over_limit"] = max(len(ordered) - roots.cgroups_max, 0)
    families = _families()
    for cgroup in ordered[:roots.cgroups_max]:
        try:
            who = identity(roots, cgroup)
            if who.sandbox:
                states["sandbox"] += 1
                continue
            usage = read_v2(tree.directories[""] + cgroup.rstrip("/")) if tree.unified \
                else read_v1(tree, cgroup)
        except ValueError:
            states["unreadable"] += 1  # one odd file leaves that cgroup out, not the others
            continue
        states["exported"] += 1
        _add(families, roots, _labels(cgroup, who), usage)
    return [*_metrics(families.values()), _states(states)]


def _metrics(families: Iterable[_Family]) -> Iterator[Metric]:
    for family in families:
        if family.samples:
            metric = Metric(family.name, family.help, family.kind)
            metric.samples = family.samples
            yield metric


def _states(states: dict[str, int]) -> Metric:
    metric = Metric("redline_node_exporter_cgroups",
                    "Cgroups seen by the cgroups collector in this scrape, by state: exported, "
                    "over_limit (beyond --cgroups-max), sandbox (pause containers, not "
                    "exported), unreadable (a file that does not parse).", "gauge")
    metric.samples = [Sample("redline_node_exporter_cgroups", {"state": state}, float(count))
                      for state, count in states.items()]
    return metric
