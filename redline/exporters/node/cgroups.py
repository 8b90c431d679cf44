"""cgroup files and paths -> values and identities, sans IO: text in, values out.

The units are cAdvisor's, so that redline's `cgroups` collector and kubelet's built-in cAdvisor
feed the same queries: seconds for CPU time, bytes for memory and I/O, microseconds for the CPU
quota and period (`container_spec_cpu_quota` is in microseconds in cAdvisor too).

Who a cgroup belongs to comes from two places, and only what they say is labelled:
- its path (`path_identity`): kubelet's layouts give the pod's UID and the runtime's container
  id, Docker's gives the container id; neither gives a name.
- the container runtime's own files (`runtime_identity`), when the collector can read them:
  containerd's and CRI-O's OCI bundle annotations and Docker's container config carry the
  namespace, pod and container names, and whether the container is a pod's sandbox (pause).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from redline.exporters.node.procfs import USER_HZ

__all__ = ["CgroupUsage", "Identity", "PathIdentity", "cpuacct_ticks", "parse_blkio",
           "parse_cpu_max", "parse_docker_config", "parse_io_stat", "parse_keyed", "parse_limit",
           "parse_oci_annotations", "path_identity", "runtime_identity", "working_set"]

NANOSECONDS = 1e9
MICROSECONDS = 1e6
# cAdvisor reports an unlimited memory limit as 0: the kernel's "max" (v2) and v1's
# page-rounded LLONG_MAX (9223372036854771712) are both above 2^62.
UNLIMITED_ABOVE = 2 ** 62


@dataclass
class CgroupUsage:
    """One cgroup's readings in cAdvisor's units; None where the cgroup has no such file
    (the root cgroup has no limits, a v2 cgroup without the cpu controller no cpu.max)."""

    cpu_seconds: float | None = None
    cpu_user_seconds: float | None = None
    cpu_system_seconds: float | None = None
    cfs_periods: float | None = None
    cfs_throttled_periods: float | None = None
    cfs_throttled_seconds: float | None = None
    cpu_quota_us: float | None = None  # None: no quota
    cpu_period_us: float | None = None
    memory_usage: float | None = None
    memory_working_set: float | None = None
    memory_rss: float | None = None
    memory_cache: float | None = None
    memory_limit: float | None = None  # 0: unlimited, as cAdvisor reports it
    oom_kills: float | None = None
    # resource (cpu, memory, io) -> "some"/"full" -> seconds
    pressure: dict[str, dict[str, float]] = field(default_factory=dict)
    # device -> (bytes read, bytes written)
    io: dict[str, tuple[float, float]] = field(default_factory=dict)


def parse_keyed(text: str, name: str) -> dict[str, float]:
    """`key value` lines (cpu.stat, memory.stat, memory.events, memory.oom_control,
    cpuacct.stat) -> key -> value."""
    values: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(f"{name} line {number}: expected 'key value', got {line[:60]!r}")
        try:
            values[parts[0]] = float(parts[1])
        except ValueError as exc:
            raise ValueError(f"{name} line {number}: cannot read {line[:60]!r}") from exc
    return values


def parse_limit(text: str, name: str) -> float:
    """One number (memory.max, memory.limit_in_bytes, memory.current); unlimited ("max", or
    v1's LLONG_MAX) is 0, as cAdvisor reports it."""
    value = text.strip()
    if value == "max":
        return 0.0
    try:
        number = float(int(value))
    except ValueError as exc:
        raise ValueError(f"{name}: expected a number or 'max', got {value[:60]!r}") from exc
    return 0.0 if number > UNLIMITED_ABOVE else number


def parse_cpu_max(text: str) -> tuple[float | None, float]:
    """v2 cpu.max `$QUOTA $PERIOD` in microseconds -> (quota or None for `max`, period)."""
    parts = text.split()
    try:
        if len(parts) != 2:
            raise ValueError
        return (None if parts[0] == "max" else float(int(parts[0]))), float(int(parts[1]))
    except ValueError as exc:
        raise ValueError(f"cpu.max: expected '$QUOTA $PERIOD', got {text[:60]!r}") from exc


def parse_io_stat(text: str) -> dict[str, tuple[float, float]]:
    """v2 io.stat `8:0 rbytes=1 wbytes=2 rios=...` -> major:minor -> (read, written) bytes."""
    devices: dict[str, tuple[float, float]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        fields = dict(part.partition("=")[::2] for part in parts[1:])
        try:
            devices[parts[0]] = (float(fields.get("rbytes", 0)), float(fields.get("wbytes", 0)))
        except ValueError as exc:
            raise ValueError(f"io.stat line {number}: cannot read {line[:60]!r}") from exc
    return devices


def parse_blkio(text: str) -> dict[str, tuple[float, float]]:
    """v1 blkio.throttle.io_service_bytes `8:0 Read 4096` lines -> major:minor ->
    (read, written) bytes. The `Total` line and other operations are left out."""
    reads: dict[str, float] = {}
    writes: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if len(parts) != 3 or parts[1] not in ("Read", "Write"):
            continue
        try:
            (reads if parts[1] == "Read" else writes)[parts[0]] = float(parts[2])
        except ValueError as exc:
            raise ValueError(f"blkio line {number}: cannot read {line[:60]!r}") from exc
    return {device: (reads.get(device, 0.0), writes.get(device, 0.0))
            for device in sorted(reads.keys() | writes.keys())}


def cpuacct_ticks(values: Mapping[str, float]) -> tuple[float, float]:
    """v1 cpuacct.stat (USER_HZ ticks) -> (user, system) seconds."""
    return values.get("user", 0.0) / USER_HZ, values.get("system", 0.0) / USER_HZ


def working_set(usage: float, inactive_file: float) -> float:
    """cAdvisor's working set: usage minus the inactive page cache the kernel can drop first
    without a fault; what the kubelet evicts on and the OOM killer sees coming."""
    return max(usage - inactive_file, 0.0)


# --- identity ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PathIdentity:
    """What a cgroup's path alone says: a container runtime's id and, under kubelet, the
    pod's UID. Empty strings where the path does not say."""

    runtime: str = ""  # containerd, crio or docker
    container_id: str = ""
    pod_uid: str = ""


_ID = r"[0-9a-f]{64}"
# kubelet, systemd driver: kubepods-burstable-pod<uid with _>.slice; cgroupfs: pod<uid>
_POD = re.compile(r"^(?:kubepods(?:-besteffort|-burstable)?-pod([0-9a-f_]{36})\.slice|"
                  r"pod([0-9a-f-]{36}))$")
# systemd scopes: cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope
_SCOPE = re.compile(rf"^(cri-containerd|crio|docker)-({_ID})\.scope$")
_BARE = re.compile(rf"^{_ID}$")
_RUNTIMES = {"cri-containerd": "containerd", "crio": "crio", "docker": "docker"}


def path_identity(path: str) -> PathIdentity:
    """The identity a cgroup path (`/kubepods.slice/.../cri-containerd-<id>.scope`) shows."""
    parts = [part for part in path.split("/") if part]
    pod_uid = ""
    for part in parts[:-1]:
        match = _POD.match(part)
        if match:
            pod_uid = (match.group(1) or match.group(2)).replace("_", "-")
    if not parts:
        return PathIdentity()
    last = parts[-1]
    scope = _SCOPE.match(last)
    if scope:
        return PathIdentity(_RUNTIMES[scope.group(1)], scope.group(2), pod_uid)
    if _BARE.match(last) and (pod_uid or (len(parts) > 1 and parts[-2] == "docker")):
        # cgroupfs driver: /kubepods/burstable/pod<uid>/<id> (runtime unknown from the path)
        # or Docker's /docker/<id>
        return PathIdentity("" if pod_uid else "docker", last, pod_uid)
    return PathIdentity()


@dataclass(frozen=True)
class Identity:
    """The names a container runtime gives a container; `sandbox` for a pod's pause
    container, which runs nothing of the pod's and is not exported."""

    namespace: str = ""
    pod: str = ""
    container: str = ""
    sandbox: bool = False


# (namespace, pod, container, type key, sandbox type value) for each runtime's keys:
# containerd's CRI annotations, CRI-O's, and dockershim / cri-dockerd container labels.
_KUBERNETES_KEYS = (
    ("io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri.sandbox-name",
     "io.kubernetes.cri.container-name", "io.kubernetes.cri.container-type", "sandbox"),
    ("io.kubernetes.pod.namespace", "io.kubernetes.pod.name", "io.kubernetes.container.name",
     "io.kubernetes.cri-o.ContainerType", "sandbox"),
    ("io.kubernetes.pod.namespace", "io.kubernetes.pod.name", "io.kubernetes.container.name",
     "io.kubernetes.docker.type", "podsandbox"),
)


def runtime_identity(annotations: Mapping[str, str], name: str = "") -> Identity:
    """Kubernetes names from a container's annotations or labels; otherwise `name` (a plain
    Docker container's own name) as the container."""
    for namespace, pod, _, kind, sandbox in _KUBERNETES_KEYS:
        if annotations.get(kind) == sandbox:  # first: CRI-O and Docker share the name keys
            return Identity(annotations.get(namespace, ""), annotations.get(pod, ""),
                            sandbox=True)
    for namespace, pod, container, _, _ in _KUBERNETES_KEYS:
        if annotations.get(pod):
            return Identity(annotations.get(namespace, ""), annotations[pod],
                            annotations.get(container, ""))
    return Identity(container=name)


def parse_oci_annotations(text: str) -> dict[str, str]:
    """An OCI bundle's config.json (containerd, CRI-O) -> its annotations."""
    try:
        annotations = json.loads(text).get("annotations") or {}
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"config.json: expected an OCI runtime spec: {exc}") from exc
    return {str(k): str(v) for k, v in annotations.items()}


def parse_docker_config(text: str) -> tuple[str, dict[str, str]]:
    """Docker's config.v2.json -> (the container's name without its '/', its labels)."""
    try:
        document = json.loads(text)
        labels = (document.get("Config") or {}).get("Labels") or {}
        name = str(document.get("Name", "")).lstrip("/")
    except (ValueError, AttributeError) as exc:
        raise ValueError(f"config.v2.json: expected a Docker container config: {exc}") from exc
    return name, {str(k): str(v) for k, v in labels.items()}
