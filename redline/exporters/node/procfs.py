"""Parsers for the /proc and /sys files behind the USE metrics, sans IO: text in, values out.

Each function takes the text of one file and returns plain values; the collectors turn them into
metric families. Malformed input raises ValueError naming the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

USER_HZ = 100  # /proc/stat counts in USER_HZ ticks, 100 on every Linux architecture
SECTOR = 512  # /proc/diskstats counts 512-byte sectors, whatever the device's sector size

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass
class Stat:
    cpus: dict[str, dict[str, float]]  # cpu number -> mode -> seconds
    guest: dict[str, dict[str, float]]  # cpu number -> user/nice -> seconds
    boot_time: float
    context_switches: float
    forks: float
    interrupts: float
    procs_running: float
    procs_blocked: float


def parse_stat(text: str) -> Stat:
    cpus: dict[str, dict[str, float]] = {}
    guest: dict[str, dict[str, float]] = {}
    values: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        key = fields[0]
        try:
            if key.startswith("cpu") and key != "cpu":
                ticks = [int(v) / USER_HZ for v in fields[1:]]
                cpu = key[3:]
                cpus[cpu] = dict(zip(CPU_MODES, ticks[:8], strict=False))
                guest[cpu] = {"user": ticks[8] if len(ticks) > 8 else 0.0,
                              "nice": ticks[9] if len(ticks) > 9 else 0.0}
            elif key in ("btime", "ctxt", "processes", "intr", "procs_running",
                         "procs_blocked"):
                values[key] = float(fields[1])
        except (ValueError, IndexError) as exc:
            raise ValueError(f"stat line {number}: cannot read {line[:60]!r}") from exc
    missing = {"btime", "ctxt", "processes", "intr", "procs_running", "procs_blocked"} - \
        set(values)
    if missing or not cpus:
        raise ValueError(f"stat: missing {', '.join(sorted(missing)) or 'cpu lines'}")
    return Stat(cpus, guest, values["btime"], values["ctxt"], values["processes"],
                values["intr"], values["procs_running"], values["procs_blocked"])


def parse_loadavg(text: str) -> tuple[float, float, float]:
    fields = text.split()
    try:
        return float(fields[0]), float(fields[1]), float(fields[2])
    except (ValueError, IndexError) as exc:
        raise ValueError(f"loadavg: cannot read {text[:60]!r}") from exc


_MEMINFO_NAME = re.compile(r"[()]")


def parse_meminfo(text: str) -> dict[str, float]:
    """Metric suffix -> value: `MemTotal_bytes` (kB fields, in bytes), `HugePages_Total`."""
    values: dict[str, float] = {}
    for number, line in enumerate(text.splitlines(), 1):
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            if line.strip():
                raise ValueError(f"meminfo line {number}: cannot read {line[:60]!r}")
            continue
        key = _MEMINFO_NAME.sub("_", name.strip()).rstrip("_").replace("__", "_")
        try:
            value = float(parts[0])
        except ValueError as exc:
            raise ValueError(f"meminfo line {number}: cannot read {line[:60]!r}") from exc
        if len(parts) > 1 and parts[1] == "kB":
            values[f"{key}_bytes"] = value * 1024
        else:
            values[key] = value
    return values


def parse_pressure(text: str) -> dict[str, float]:
    """`some` / `full` -> total stall time in seconds (the kernel counts microseconds).
    /proc/pressure/irq has a `full` line only; the caller says which lines it needs."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition(" ")
        for field in rest.split():
            key, _, value = field.partition("=")
            if key == "total":
                try:
                    # two divisions, as node_exporter does: the same value to the last bit
                    totals[kind] = int(value) / 1000.0 / 1000.0
                except ValueError as exc:
                    raise ValueError(f"pressure: cannot read {line[:60]!r}") from exc
    if not totals:
        raise ValueError("pressure: no 'some' or 'full' line")
    return totals


def parse_vmstat(text: str, fields: re.Pattern[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and fields.match(parts[0]):
            try:
                values[parts[0]] = float(parts[1])
            except ValueError as exc:
                raise ValueError(f"vmstat: cannot read {line[:60]!r}") from exc
    return values


DISK_FIELDS = (
    # (metric suffix, scale, is counter); in /proc/diskstats order after the device name
    ("reads_completed_total", 1.0, True),
    ("reads_merged_total", 1.0, True),
    ("read_bytes_total", float(SECTOR), True),
    ("read_time_seconds_total", 0.001, True),
    ("writes_completed_total", 1.0, True),
    ("writes_merged_total", 1.0, True),
    ("written_bytes_total", float(SECTOR), True),
    ("write_time_seconds_total", 0.001, True),
    ("io_now", 1.0, False),
    ("io_time_seconds_total", 0.001, True),
    ("io_time_weighted_seconds_total", 0.001, True),
    ("discards_completed_total", 1.0, True),
    ("discards_merged_total", 1.0, True),
    ("discarded_sectors_total", 1.0, True),
    ("discard_time_seconds_total", 0.001, True),
    ("flush_requests_total", 1.0, True),
    ("flush_requests_time_seconds_total", 0.001, True),
)


@dataclass
class Disk:
    major: str
    minor: str
    name: str
    values: list[float]  # as many DISK_FIELDS as the kernel gives (11, 15 or 17)


def parse_diskstats(text: str) -> list[Disk]:
    disks = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 14:
            raise ValueError(f"diskstats line {number}: expected at least 14 fields, "
                             f"got {len(parts)}")
        try:
            values = [float(v) * scale for v, (_, scale, _) in
                      zip(parts[3:], DISK_FIELDS, strict=False)]
        except ValueError as exc:
            raise ValueError(f"diskstats line {number}: cannot read {line[:60]!r}") from exc
        disks.append(Disk(parts[0], parts[1], parts[2], values))
    return disks


NET_FIELDS = ("receive_bytes", "receive_packets", "receive_errs", "receive_drop",
              "receive_fifo", "receive_frame", "receive_compressed", "receive_multicast",
              "transmit_bytes", "transmit_packets", "transmit_errs", "transmit_drop",
              "transmit_fifo", "transmit_colls", "transmit_carrier", "transmit_compressed")


def parse_net_dev(text: str) -> dict[str, dict[str, float]]:
    devices: dict[str, dict[str, float]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        name, sep, rest = line.partition(":")
        if not sep or "|" in line:
            continue  # the two header lines
        parts = rest.split()
        if len(parts) != len(NET_FIELDS):
            raise ValueError(f"net/dev line {number}: expected {len(NET_FIELDS)} values, "
                             f"got {len(parts)}")
        try:
            devices[name.strip()] = {f: float(v) for f, v in zip(NET_FIELDS, parts, strict=True)}
        except ValueError as exc:
            raise ValueError(f"net/dev line {number}: cannot read {line[:60]!r}") from exc
    return devices


def parse_file_nr(text: str) -> tuple[float, float]:
    """(allocated, maximum) file handles from /proc/sys/fs/file-nr."""
    parts = text.split()
    try:
        return float(parts[0]), float(parts[2])
    except (ValueError, IndexError) as exc:
        raise ValueError(f"file-nr: cannot read {text[:60]!r}") from exc


def parse_udev(text: str) -> dict[str, str]:
    """Properties (`E:KEY=value` lines) of a udev database entry."""
    properties = {}
    for line in text.splitlines():
        if line.startswith("E:"):
            key, _, value = line[2:].partition("=")
            properties[key] = value
    return properties


@dataclass
class Mount:
    device: str
    mountpoint: str
    fstype: str
    readonly: bool
    major: str = ""
    minor: str = ""


def _unescape_mount(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            separator = fields.index("-", 6)
            mountpoint, options = fields[4], fields[5]
            fstype, device = fields[separator + 1], fields[separator + 2]
        except (ValueError, IndexError) as exc:
            raise ValueError(f"mountinfo line {number}: cannot read {line[:60]!r}") from exc
        major, _, minor = fields[2].partition(":")
        mounts.append(Mount(_unescape_mount(device), _unescape_mount(mountpoint), fstype,
                            "ro" in options.split(","), major, minor))
    return mounts


def parse_netstat(text: str) -> dict[str, float]:
    """/proc/net/netstat and /proc/net/snmp: `Proto: names` lines, each followed by values."""
    values: dict[str, float] = {}
    lines = [line for line in text.splitlines() if line.strip()]
    for number in range(0, len(lines) - 1, 2):
        protocol, _, names = lines[number].partition(":")
        again, _, numbers = lines[number + 1].partition(":")
        if protocol != again:
            raise ValueError(f"netstat line {number + 2}: expected values for {protocol!r}")
        for name, value in zip(names.split(), numbers.split(), strict=False):
            try:
                values[f"{protocol}_{name}"] = float(value)
            except ValueError as exc:
                raise ValueError(f"netstat: cannot read {protocol} {name}={value!r}") from exc
    return values


def parse_snmp6(text: str) -> dict[str, float]:
    """/proc/net/snmp6: `Ip6InReceives 1` lines, named `Ip6_InReceives` as node_exporter does."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue
        six = parts[0].find("6")
        if six < 0:
            continue
        try:
            values[f"{parts[0][:six + 1]}_{parts[0][six + 1:]}"] = float(parts[1])
        except ValueError as exc:
            raise ValueError(f"snmp6: cannot read {line[:60]!r}") from exc
    return values


CONNTRACK_STATS = ("found", "invalid", "ignore", "insert", "insert_failed", "drop",
                   "early_drop", "search_restart")


def parse_conntrack_stat(text: str) -> dict[str, float]:
    """/proc/net/stat/nf_conntrack: a header, then one line of hex counters per CPU; summed."""
    lines = text.split("\n")
    header = lines[0].split()
    totals = dict.fromkeys(CONNTRACK_STATS, 0.0)
    for line in lines[1:]:
        values = line.split()
        if not values:
            continue
        if len(values) != len(header):
            raise ValueError(f"nf_conntrack stat: expected {len(header)} values per CPU")
        row = dict(zip(header, values, strict=True))
        for key in CONNTRACK_STATS:
            if key in row:
                totals[key] += int(row[key], 16)
    return totals


def parse_loadavg_threads(text: str) -> float:
    """Threads in the system: the denominator of /proc/loadavg's fourth field (`2/345`)."""
    try:
        return float(text.split()[3].split("/")[1])
    except (IndexError, ValueError) as exc:
        raise ValueError(f"loadavg: cannot read {text[:60]!r}") from exc
