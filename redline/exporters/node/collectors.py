"""USE collectors: node_exporter's names, labels, types and values, read at scrape time.

Every collector reads its files when Prometheus scrapes (no background thread, no rate state:
ratios are recording rules) and returns metric families. A collector whose source is missing
or unreadable raises; the node collector then reports it with
`node_scrape_collector_success{collector} 0` and the others carry on.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from redline.exporters.node import cgroups_collector, procfs
from redline.exporters.node.network import conntrack, netclass, netdev, netstat
from redline.exporters.node.roots import Families, Roots, family, read, single

__all__ = ["COLLECTORS", "DISK_EXCLUDE", "MEMINFO_FIELDS", "NODE_EXPORTER_EQUIVALENT",
           "OPTIONAL_COLLECTORS", "VMSTAT_FIELDS", "NodeCollector", "Roots"]

# node_exporter's default filters (of the release in docs/node-exporter.md), so that both export
# the same series; vmstat adds page scanning and stealing (memory reclaim: the saturation signal
# before OOM kills), which node_exporter exports under the same names when its
# --collector.vmstat.fields includes them. zram devices are left out since node_exporter 1.9.
VMSTAT_FIELDS = re.compile(r"^(oom_kill|pgpg|pswp|pg.*fault|pgscan_.*|pgsteal_.*).*")
DISK_EXCLUDE = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
MOUNT_POINTS_EXCLUDE = re.compile(
    r"^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
FS_TYPES_EXCLUDE = re.compile(
    r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
    r"iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|"
    r"sysfs|tracefs)$")


def cpu(roots: Roots) -> Families:
    parsed = procfs.parse_stat(roots.read_proc("stat"))
    return [
        family("counter", "node_cpu_seconds", "Seconds the CPUs spent in each mode.",
               labelnames=("cpu", "mode"),
               labelled=[((number, mode), modes[mode]) for number, modes in parsed.cpus.items()
                         for mode in sorted(modes)]),
        family("counter", "node_cpu_guest_seconds",
               "Seconds the CPUs spent in guests (VMs) for each mode.",
               labelnames=("cpu", "mode"),
               labelled=[((number, mode), parsed.guest[number][mode])
                         for number in parsed.cpus for mode in ("nice", "user")]),
    ]


def stat(roots: Roots) -> Families:
    values = procfs.parse_stat(roots.read_proc("stat"))
    return [
        single("gauge", "node_boot_time_seconds", "Node boot time, in unixtime.",
               values.boot_time),
        single("counter", "node_context_switches", "Total number of context switches.",
               values.context_switches),
        single("counter", "node_forks", "Total number of forks.", values.forks),
        single("counter", "node_intr", "Total number of interrupts serviced.",
               values.interrupts),
        single("gauge", "node_procs_blocked",
               "Number of processes blocked waiting for I/O to complete.", values.procs_blocked),
        single("gauge", "node_procs_running", "Number of processes in runnable state.",
               values.procs_running),
    ]


def loadavg(roots: Roots) -> Families:
    loads = procfs.parse_loadavg(read(roots.proc("loadavg")))
    return [single("gauge", f"node_load{minutes}", f"{minutes}m load average.", value)
            for minutes, value in zip((1, 5, 15), loads, strict=True)]


# The /proc/meminfo fields node_exporter exports since it reads them through prometheus/procfs
# (1.9): a fixed list, so a kernel's newer fields (KReclaimable, FileHugePages, SecPageTables,
# Unaccepted...) are not exported by either.
MEMINFO_FIELDS = frozenset({
    *(f"{name}_bytes" for name in (
        "Active", "Active_anon", "Active_file", "AnonHugePages", "AnonPages", "Bounce",
        "Buffers", "Cached", "CmaFree", "CmaTotal", "CommitLimit", "Committed_AS",
        "DirectMap1G", "DirectMap2M", "DirectMap4k", "Dirty", "HardwareCorrupted",
        "Hugepagesize", "Inactive", "Inactive_anon", "Inactive_file", "KernelStack", "Mapped",
        "MemAvailable", "MemFree", "MemTotal", "Mlocked", "NFS_Unstable", "PageTables",
        "Percpu", "SReclaimable", "SUnreclaim", "Shmem", "ShmemHugePages", "ShmemPmdMapped",
        "Slab", "SwapCached", "SwapFree", "SwapTotal", "Unevictable", "VmallocChunk",
        "VmallocTotal", "VmallocUsed", "Writeback", "WritebackTmp", "Zswap", "Zswapped")),
    "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp", "HugePages_Total",
})


def meminfo(roots: Roots) -> Families:
    values = procfs.parse_meminfo(read(roots.proc("meminfo")))
    return [single("gauge", f"node_memory_{key}", f"Memory information field {key}.", value)
            for key, value in values.items() if key in MEMINFO_FIELDS]


# (resource, the lines node_exporter exports: "some" as waiting, "full" as stalled, help texts)
_PRESSURE = (
    ("cpu", ("some",), "for CPU time", ""),  # cpu "full" is newer; node_exporter skips it
    ("io", ("some", "full"), "due to IO congestion", "due to IO congestion"),
    ("memory", ("some", "full"), "for memory", "due to memory congestion"),
    ("irq", ("full",), "", "due to IRQ congestion"),  # kernel 6.1+, no "some" line
)


def pressure(roots: Roots) -> Families:
    """PSI: saturation as time stalled. Kernels without PSI have no /proc/pressure; a kernel
    without one resource's file (irq before 6.1) leaves out that resource only."""
    families: Families = []
    for resource, lines, waiting_help, stalled_help in _PRESSURE:
        try:
            text = read(roots.proc("pressure", resource))
        except FileNotFoundError:
            continue
        totals = procfs.parse_pressure(text)
        missing = [line for line in lines if line not in totals]
        if missing:
            raise ValueError(f"pressure/{resource}: no {' or '.join(missing)!r} line")
        if "some" in lines:
            families.append(single(
                "counter", f"node_pressure_{resource}_waiting_seconds",
                f"Total time in seconds that processes have waited {waiting_help}",
                totals["some"]))
        if "full" in lines:
            families.append(single(
                "counter", f"node_pressure_{resource}_stalled_seconds",
                f"Total time in seconds no process could make progress {stalled_help}",
                totals["full"]))
    if not families:
        raise FileNotFoundError(f"{roots.proc('pressure')}: no PSI files (kernel < 4.20 or "
                                "CONFIG_PSI off)")
    return families


def vmstat(roots: Roots) -> Families:
    values = procfs.parse_vmstat(read(roots.proc("vmstat")), VMSTAT_FIELDS)
    # untyped, as node_exporter exports them (some are counters, some gauges)
    return [single("unknown", f"node_vmstat_{key}", f"/proc/vmstat information field {key}.",
                   value) for key, value in values.items()]


def filefd(roots: Roots) -> Families:
    allocated, maximum = procfs.parse_file_nr(read(roots.proc("sys", "fs", "file-nr")))
    return [single("gauge", "node_filefd_allocated", "File descriptor statistics: allocated.",
                   allocated),
            single("gauge", "node_filefd_maximum", "File descriptor statistics: maximum.",
                   maximum)]


_DISK_HELP = {
    "reads_completed_total": "The total number of reads completed successfully.",
    "reads_merged_total": "The total number of reads merged.",
    "read_bytes_total": "The total number of bytes read successfully.",
    "read_time_seconds_total": "The total number of seconds spent by all reads.",
    "writes_completed_total": "The total number of writes completed successfully.",
    "writes_merged_total": "The number of writes merged.",
    "written_bytes_total": "The total number of bytes written successfully.",
    "write_time_seconds_total": "This is the total number of seconds spent by all writes.",
    "io_now": "The number of I/Os currently in progress.",
    "io_time_seconds_total": "Total seconds spent doing I/Os.",
    "io_time_weighted_seconds_total": "The weighted # of seconds spent doing I/Os.",
    "discards_completed_total": "The total number of discards completed successfully.",
    "discards_merged_total": "The total number of discards merged.",
    "discarded_sectors_total": "The total number of sectors discarded successfully.",
    "discard_time_seconds_total": "This is the total number of seconds spent by all discards.",
    "flush_requests_total": "The total number of flush requests completed successfully",
    "flush_requests_time_seconds_total":
        "This is the total number of seconds spent by all flush requests.",
}
# node_disk_info's labels in exposition order; serial is the first of its udev properties set
# (the serial printed on the disk, then the short one, then virtio's ID_SERIAL)
_DISK_INFO_LABELS = ("device", "major", "minor", "model", "path", "revision", "rotational",
                     "serial", "wwn")
_SERIAL_PROPERTIES = ("SCSI_IDENT_SERIAL", "ID_SERIAL_SHORT", "ID_SERIAL")


def _rotational(roots: Roots, device: str) -> str:
    """sysfs queue/rotational as node_exporter labels it: "1" spinning, "0" otherwise, and "0"
    where the device has no queue (node_exporter's value when it cannot read it)."""
    try:
        return format(int(read(roots.sys("block", device, "queue", "rotational"))), "b")
    except (OSError, ValueError):
        return "0"


def diskstats(roots: Roots) -> Families:
    disks = [d for d in procfs.parse_diskstats(read(roots.proc("diskstats")))
             if not DISK_EXCLUDE.match(d.name)]
    info: list[tuple[tuple[str, ...], float]] = []
    columns: dict[str, list[tuple[tuple[str, ...], float]]] = {}
    for disk in disks:
        try:
            udev = procfs.parse_udev(read(roots.root("run", "udev", "data",
                                                     f"b{disk.major}:{disk.minor}")))
        except OSError:
            udev = {}
        serial = next((udev[key] for key in _SERIAL_PROPERTIES if udev.get(key)), "")
        info.append(((disk.name, disk.major, disk.minor, udev.get("ID_MODEL", ""),
                      udev.get("ID_PATH", ""), udev.get("ID_REVISION", ""),
                      _rotational(roots, disk.name), serial, udev.get("ID_WWN", "")), 1.0))
        for (suffix, _, _), value in zip(procfs.DISK_FIELDS, disk.values, strict=False):
            columns.setdefault(suffix, []).append(((disk.name,), value))
    kinds = {suffix: "counter" if counter else "gauge" for suffix, _, counter in procfs.DISK_FIELDS}
    return [
        family("gauge", "node_disk_info", "Info of /sys/block/<block_device>.",
               labelnames=_DISK_INFO_LABELS,
               labelled=info),
        *(family(kinds[suffix], f"node_disk_{suffix}".removesuffix("_total"),
                 _DISK_HELP[suffix], labelnames=("device",), labelled=rows)
          for suffix, rows in columns.items()),
    ]


_FILESYSTEM = (
    ("size_bytes", "Filesystem size in bytes."),
    ("free_bytes", "Filesystem free space in bytes."),
    ("avail_bytes", "Filesystem space available to non-root users in bytes."),
    ("files", "Filesystem total file nodes."),
    ("files_free", "Filesystem total free file nodes."),
)


def _go_error(exc: OSError) -> str:
    """An errno as Go's syscall package words it (strerror with a lower-case first letter):
    node_exporter's device_error label."""
    if exc.errno is None:
        return str(exc)
    text = os.strerror(exc.errno)
    return text[:1].lower() + text[1:]


def filesystem(roots: Roots) -> Families:
    """Space and inodes per mount (statvfs through the host's root, as mounted at --rootfs).
    Labels as node_exporter 1.9+: `device_error` is empty, or the statvfs error of a mount
    whose space cannot be read (that mount then has device_error 1 and readonly only)."""
    try:
        text = read(roots.proc("1", "mountinfo"))
    except OSError:
        text = read(roots.proc("self", "mountinfo"))
    rows: dict[str, list[tuple[tuple[str, ...], float]]] = {key: [] for key, _ in _FILESYSTEM}
    readonly: list[tuple[tuple[str, ...], float]] = []
    errors: list[tuple[tuple[str, ...], float]] = []
    mounts: list[tuple[tuple[str, ...], float]] = []
    seen: set[tuple[str, str]] = set()
    for mount in procfs.parse_mountinfo(text):
        if MOUNT_POINTS_EXCLUDE.match(mount.mountpoint) or FS_TYPES_EXCLUDE.match(mount.fstype):
            continue
        if (mount.device, mount.mountpoint) in seen:
            continue  # mounted twice on the same point: node_exporter reports it once
        seen.add((mount.device, mount.mountpoint))
        ro = 1.0 if mount.readonly else 0.0
        try:
            st = os.statvfs(roots.root(mount.mountpoint.lstrip("/")))
        except OSError as exc:
            labels = (mount.device, _go_error(exc), mount.fstype, mount.mountpoint)
            errors.append((labels, 1.0))
            readonly.append((labels, ro))
            continue
        labels = (mount.device, "", mount.fstype, mount.mountpoint)
        errors.append((labels, 0.0))
        readonly.append((labels, ro))
        for (key, _), value in zip(_FILESYSTEM, (
                st.f_blocks * st.f_bsize, st.f_bfree * st.f_bsize, st.f_bavail * st.f_bsize,
                st.f_files, st.f_ffree), strict=True):
            rows[key].append((labels, float(value)))
        mounts.append(((mount.device, mount.major, mount.minor, mount.mountpoint), 1.0))
    names = ("device", "device_error", "fstype", "mountpoint")
    return [
        *(family("gauge", f"node_filesystem_{key}", help_text, labelnames=names,
                 labelled=rows[key]) for key, help_text in _FILESYSTEM),
        family("gauge", "node_filesystem_readonly", "Filesystem read-only status.",
               labelnames=names, labelled=readonly),
        family("gauge", "node_filesystem_device_error",
               "Whether an error occurred while getting statistics for the given device.",
               labelnames=names, labelled=errors),
        family("gauge", "node_filesystem_mount_info", "Filesystem mount information.",
               labelnames=("device", "major", "minor", "mountpoint"), labelled=mounts),
    ]


def processes(roots: Roots) -> Families:
    """Task capacity: threads and PIDs against the kernel's limits (node_exporter's names)."""
    threads = procfs.parse_loadavg_threads(read(roots.proc("loadavg")))
    max_threads = float(read(roots.proc("sys", "kernel", "threads-max")))
    max_pids = float(read(roots.proc("sys", "kernel", "pid_max")))
    pids = float(sum(1 for entry in os.scandir(roots.procfs) if entry.name.isdigit()))
    return [
        single("gauge", "node_processes_threads", "Allocated threads in system", threads),
        single("gauge", "node_processes_max_threads", "Limit of threads in the system",
               max_threads),
        single("gauge", "node_processes_pids", "Number of PIDs", pids),
        single("gauge", "node_processes_max_processes", "Number of max PIDs limit", max_pids),
    ]


def disk_errors(roots: Roots) -> Families:
    """I/O errors per disk from sysfs, where the device counts them (SCSI and SATA)."""
    errors: list[tuple[tuple[str, ...], float]] = []
    base = roots.sys("block")
    for name in sorted(os.listdir(base)):
        if DISK_EXCLUDE.match(name):
            continue
        try:
            errors.append(((name,), float(int(read(
                os.path.join(base, name, "device", "ioerr_cnt")).strip(), 16))))
        except (OSError, ValueError):
            continue
    return [family("counter", "node_disk_io_errors",
                   "I/O requests that completed with an error, from sysfs ioerr_cnt.",
                   labelnames=("device",), labelled=errors)]


COLLECTORS: dict[str, Callable[[Roots], Families]] = {
    "conntrack": conntrack,
    "cpu": cpu,
    "diskerrors": disk_errors,
    "diskstats": diskstats,
    "filefd": filefd,
    "filesystem": filesystem,
    "loadavg": loadavg,
    "meminfo": meminfo,
    "netclass": netclass,
    "netdev": netdev,
    "netstat": netstat,
    "pressure": pressure,
    "processes": processes,
    "stat": stat,
    "vmstat": vmstat,
}
# Run only when named in --collectors: kubelet's cAdvisor exports the same container series in
# a cluster, and a second copy would double every sum.
OPTIONAL_COLLECTORS: dict[str, Callable[[Roots], Families]] = {
    "cgroups": cgroups_collector.collect,
}
# Collectors that exist in node_exporter under the same name with the same output; the others
# export a subset of a node_exporter collector (processes, netclass) or what it lacks.
NODE_EXPORTER_EQUIVALENT = ("conntrack", "cpu", "diskstats", "filefd", "filesystem", "loadavg",
                            "meminfo", "netdev", "netstat", "pressure", "stat", "vmstat")


def check_collectors(names: Sequence[str]) -> list[str]:
    """The names, when each is a collector (a typo must not silently drop a resource)."""
    unknown = set(names) - set(COLLECTORS) - set(OPTIONAL_COLLECTORS)
    if unknown:
        raise ValueError(f"unknown collectors {sorted(unknown)}; "
                         f"expected some of {sorted([*COLLECTORS, *OPTIONAL_COLLECTORS])}")
    return list(names)


def collector_list(text: str) -> tuple[str, ...]:
    """`--collectors`: comma-separated collector names, at least one."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ValueError(f"expected one or more of {', '.join(COLLECTORS)}, got {text!r}")
    return tuple(check_collectors(names))


class NodeCollector:
    """All enabled collectors, each timed and isolated, as node_exporter reports them."""

    def __init__(self, roots: Roots, enabled: list[str] | None = None,
                 on_error: Callable[[str, Exception], None] | None = None) -> None:
        self.roots = roots
        self.enabled = list(COLLECTORS) if enabled is None else check_collectors(enabled)
        self.on_error = on_error

    def collect(self) -> Iterator[Metric]:
        duration = GaugeMetricFamily("node_scrape_collector_duration_seconds",
                                     "node_exporter: Duration of a collector scrape.",
                                     labels=("collector",))
        success = GaugeMetricFamily("node_scrape_collector_success",
                                    "node_exporter: Whether a collector succeeded.",
                                    labels=("collector",))
        yield from self._collect(dataclasses.replace(self.roots), duration, success)
        yield duration
        yield success

    def _collect(self, roots: Roots, duration: GaugeMetricFamily, success: GaugeMetricFamily
                 ) -> Iterator[Metric]:
        for name in self.enabled:
            started = time.perf_counter()
            try:
                families = (COLLECTORS.get(name) or OPTIONAL_COLLECTORS[name])(roots)
            except (OSError, ValueError) as exc:
                families, ok = [], 0
                if self.on_error is not None:
                    self.on_error(name, exc)
            else:
                ok = 1
            duration.add_metric((name,), time.perf_counter() - started)
            success.add_metric((name,), ok)
            yield from families
