"""USE collectors on checked-in /proc and /sys trees: exact expositions, missing sources."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from redline.exporters.node import procfs
from redline.exporters.node.collectors import COLLECTORS, NodeCollector, Roots
from tests.conftest import promtool_check_metrics

FIXTURES = Path(__file__).parent / "fixtures"


def roots(tree: str) -> Roots:
    base = FIXTURES / tree
    return Roots(str(base / "proc"), str(base / "sys"), str(base / "root"))


# statvfs of real directories: values differ per machine, tested apart below.
EXACT = [name for name in COLLECTORS if name != "filesystem"]


def exposition(tree: str) -> tuple[str, CollectorRegistry]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(roots(tree), EXACT))
    text = generate_latest(registry).decode()
    # Durations vary from run to run; everything else is exact.
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith("node_scrape_collector_duration_seconds{")) + "\n", \
        registry


@pytest.mark.parametrize("tree", ["psi", "nopsi"])
def test_expositions_are_exact(tree: str) -> None:
    text, _ = exposition(tree)
    assert text == (FIXTURES / f"{tree}.prom").read_text()
    promtool_check_metrics(text.encode(), node_exporter_names=True)


def test_values_by_hand() -> None:
    _, registry = exposition("psi")
    get = registry.get_sample_value
    assert get("node_cpu_seconds_total", {"cpu": "1", "mode": "softirq"}) == 37.13
    assert get("node_cpu_guest_seconds_total", {"cpu": "1", "mode": "user"}) == 1.2
    assert get("node_disk_read_bytes_total", {"device": "sda"}) == 6796738 * 512
    assert get("node_disk_io_time_weighted_seconds_total", {"device": "sda"}) == 59.405
    assert get("node_disk_io_now", {"device": "sda"}) == 2
    assert get("node_disk_flush_requests_total", {"device": "sda"}) == 797
    assert get("node_disk_read_bytes_total", {"device": "sda1"}) is None  # partition
    assert get("node_disk_read_bytes_total", {"device": "loop0"}) is None
    assert get("node_disk_discards_completed_total", {"device": "dm-0"}) is None  # old kernel
    assert get("node_disk_discard_time_seconds_total", {"device": "md127"}) == 0.014
    assert get("node_disk_info", {"device": "sda", "major": "8", "minor": "0",
                                  "model": "Samsung_SSD_870", "path": "pci-0000:00:17.0-ata-1",
                                  "revision": "SVT01B6Q", "rotational": "1",
                                  "serial": "S6PNNX0R123456",
                                  "wwn": "0x5002538f4123abcd"}) == 1
    # node_exporter 1.9+: SCSI_IDENT_SERIAL before ID_SERIAL_SHORT, then ID_SERIAL (virtio)
    assert get("node_disk_info", {"device": "nvme0n1", "major": "259", "minor": "0",
                                  "model": "Samsung_SSD_980_PRO_1TB",
                                  "path": "pci-0000:01:00.0-nvme-1", "revision": "",
                                  "rotational": "0", "serial": "S5GXNX0T",
                                  "wwn": "eui.002538b911b3c1d2"}) == 1
    assert get("node_disk_info", {"device": "sr0", "major": "11", "minor": "0",
                                  "model": "QEMU_DVD-ROM", "path": "", "revision": "",
                                  "rotational": "0", "serial": "QEMU_DVD-ROM_QM00003",
                                  "wwn": ""}) == 1  # no queue/rotational: "0" as node_exporter
    assert get("node_disk_read_bytes_total", {"device": "zram0"}) is None  # excluded since 1.9
    assert get("node_network_transmit_carrier_total", {"device": "eth0"}) == 11
    assert get("node_network_receive_nohandler_total", {"device": "eth0"}) == 17
    assert get("node_network_receive_bytes_total", {"device": "lo"}) is None
    assert get("node_network_receive_bytes_total", {"device": "br-3f2a9c1d"}) == 1000
    assert get("node_memory_Active_anon_bytes") == 12345 * 1024
    assert get("node_memory_HugePages_Total") == 0
    assert get("node_memory_Zswap_bytes") == 0
    assert get("node_memory_KReclaimable_bytes") is None  # not in node_exporter's procfs list
    assert get("node_pressure_cpu_waiting_seconds_total") == 123.456789
    assert get("node_pressure_io_stalled_seconds_total") == 1.5
    assert get("node_pressure_irq_stalled_seconds_total") == 0.004242
    assert get("node_pressure_irq_waiting_seconds_total") is None  # irq has no "some" line
    assert get("node_vmstat_oom_kill") == 3
    assert get("node_vmstat_pgscan_kswapd") == 10  # reclaim: added to node_exporter's default
    assert get("node_vmstat_nr_free_pages") is None
    assert get("node_procs_blocked") == 1
    assert get("node_filefd_maximum") == 2466177
    assert get("node_netstat_TcpExt_ListenOverflows") == 17
    assert get("node_netstat_Tcp_RetransSegs") == 139
    assert get("node_netstat_Tcp_InErrs") == 4
    assert get("node_netstat_Ip6_InOctets") == 128
    assert get("node_netstat_Tcp_MaxConn") is None  # not in the default fields
    assert get("node_netstat_TcpExt_TCPOFOQueue") == 23  # default fields since 1.9
    assert get("node_netstat_TcpExt_TCPRcvQDrop") == 29
    assert get("node_nf_conntrack_entries") == 5
    assert get("node_nf_conntrack_stat_found") == 0x0A + 0x10  # summed over CPUs
    assert get("node_nf_conntrack_stat_search_restart") == 2
    assert get("node_processes_threads") == 345
    assert get("node_processes_max_threads") == 191807
    assert get("node_processes_pids") == 2
    assert get("node_processes_max_processes") == 4194304
    assert get("node_network_speed_bytes", {"device": "eth0"}) == 125_000_000
    assert get("node_network_speed_bytes", {"device": "br-3f2a9c1d"}) is None
    # speed -1 (unknown): node_exporter's -1 Mbit/s in bytes, unless ignore-invalid-speed
    assert get("node_network_speed_bytes", {"device": "veth9a8b7c6"}) == -125_000
    assert get("node_disk_io_errors_total", {"device": "sda"}) == 2
    assert get("node_disk_io_errors_total", {"device": "loop0"}) is None


def test_a_kernel_without_psi_leaves_only_that_collector_out() -> None:
    _, registry = exposition("nopsi")
    get = registry.get_sample_value
    assert get("node_scrape_collector_success", {"collector": "pressure"}) == 0
    assert get("node_scrape_collector_success", {"collector": "cpu"}) == 1
    assert get("node_pressure_cpu_waiting_seconds_total") is None
    assert get("node_load1") == 0.11


def test_a_kernel_without_irq_pressure_keeps_the_other_resources(tmp_path: Path) -> None:
    """Kernels before 6.1 have cpu, io and memory PSI but no /proc/pressure/irq."""
    shutil.copytree(FIXTURES / "psi" / "proc" / "pressure", tmp_path / "pressure")
    (tmp_path / "pressure" / "irq").unlink()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(Roots(str(tmp_path), str(tmp_path), str(tmp_path)),
                                    ["pressure"]))
    get = registry.get_sample_value
    assert get("node_scrape_collector_success", {"collector": "pressure"}) == 1
    assert get("node_pressure_memory_stalled_seconds_total") == 7e-06
    assert get("node_pressure_irq_stalled_seconds_total") is None


def test_every_scrape_reads_proc_stat_anew(tmp_path: Path) -> None:
    """cpu and stat share one read of /proc/stat per scrape, and only per scrape."""
    proc = tmp_path / "proc"
    proc.mkdir()
    stat = (FIXTURES / "psi" / "proc" / "stat").read_text()
    (proc / "stat").write_text(stat)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(Roots(str(proc), str(tmp_path), str(tmp_path)),
                                    ["cpu", "stat"]))
    before = registry.get_sample_value("node_context_switches_total")
    assert before is not None
    (proc / "stat").write_text(stat.replace(f"ctxt {before:.0f}\n", f"ctxt {before + 5:.0f}\n"))
    assert registry.get_sample_value("node_context_switches_total") == before + 5


def test_garbage_sources_fail_their_collector_only(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "sys" / "fs").mkdir(parents=True)
    (proc / "stat").write_text("cpu0 not numbers\n")
    (proc / "loadavg").write_text("\x00\x01")
    (proc / "sys" / "fs" / "file-nr").write_text("5\t0\t100\n")
    errors: list[str] = []
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(Roots(str(proc), str(tmp_path), str(tmp_path)),
                                    on_error=lambda name, exc: errors.append(name)))
    get = registry.get_sample_value
    assert get("node_scrape_collector_success", {"collector": "filefd"}) == 1
    for name in ("cpu", "stat", "loadavg", "meminfo", "diskstats", "netdev", "vmstat",
                 "filesystem", "netstat", "conntrack", "processes", "netclass", "diskerrors"):
        assert get("node_scrape_collector_success", {"collector": name}) == 0, name
    assert "loadavg" in errors


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (procfs.parse_stat, "cpu0 1 2\n", "stat: missing btime"),
        (procfs.parse_stat, "cpu0 1 x 3\nbtime 1\n", "stat line 1"),
        (procfs.parse_meminfo, "MemTotal: lots kB\n", "meminfo line 1"),
        (procfs.parse_diskstats, "8 0 sda 1 2\n", "diskstats line 1: expected at least 14"),
        (procfs.parse_net_dev, "eth0: 1 2 3\n", "net/dev line 1: expected 16 values"),
        (procfs.parse_pressure, "some avg10=0.00\n", "pressure: no 'some' or 'full' line"),
        (procfs.parse_file_nr, "12\n", "file-nr"),
    ],
)
def test_parsers_name_the_file_and_line(parse: object, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)  # type: ignore[operator]


def test_the_real_proc_of_this_machine_parses() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(Roots()))
    for name in ("cpu", "stat", "loadavg", "meminfo", "diskstats", "netdev", "vmstat",
                 "filefd"):
        assert registry.get_sample_value("node_scrape_collector_success",
                                         {"collector": name}) == 1, name
    expected_psi = 1 if os.path.exists("/proc/pressure/cpu") else 0
    assert registry.get_sample_value("node_scrape_collector_success",
                                     {"collector": "pressure"}) == expected_psi


def test_filesystems_through_the_hosts_root(tmp_path: Path) -> None:
    (tmp_path / "proc" / "1").mkdir(parents=True)
    (tmp_path / "proc" / "1" / "mountinfo").write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "28 27 254:1 / /data ro,relatime - xfs /dev/vdb1 ro\n"
        "29 27 254:2 / /my\\040disk rw - ext4 /dev/vdc rw\n"
        "30 27 0:25 / /gone rw - ext4 /dev/vdd rw\n"
        "31 27 0:26 / /run rw - tmpfs tmpfs rw\n"
        "32 27 0:27 / /var/lib/docker/overlay2/x rw - overlay overlay rw\n"
        "33 27 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
        "34 27 254:1 / /data ro,relatime - xfs /dev/vdb1 ro\n")
    root = tmp_path / "root"
    for directory in ("data", "my disk"):
        (root / directory).mkdir(parents=True)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(Roots(str(tmp_path / "proc"), str(tmp_path), str(root)),
                                    ["filesystem"]))
    get = registry.get_sample_value

    def labels(device: str, fstype: str, mountpoint: str, error: str = "") -> dict[str, str]:
        return {"device": device, "device_error": error, "fstype": fstype,
                "mountpoint": mountpoint}

    data = labels("/dev/vdb1", "xfs", "/data")
    st = os.statvfs(root / "data")
    assert get("node_filesystem_size_bytes", data) == st.f_blocks * st.f_bsize
    assert get("node_filesystem_files", data) == st.f_files
    assert get("node_filesystem_readonly", data) == 1
    assert get("node_filesystem_readonly", labels("/dev/vda", "ext4", "/")) == 0
    assert get("node_filesystem_device_error", labels("/dev/vdc", "ext4", "/my disk")) == 0
    # node_exporter 1.9+: the statvfs error as Go words it, and readonly still exported
    gone = labels("/dev/vdd", "ext4", "/gone", "no such file or directory")
    assert get("node_filesystem_device_error", gone) == 1
    assert get("node_filesystem_readonly", gone) == 0
    assert get("node_filesystem_size_bytes", gone) is None
    assert get("node_filesystem_mount_info", {"device": "/dev/vdb1", "major": "254",
                                              "minor": "1", "mountpoint": "/data"}) == 1
    assert get("node_filesystem_mount_info", {"device": "/dev/vdd", "major": "0",
                                              "minor": "25", "mountpoint": "/gone"}) is None
    exported = {s.labels["mountpoint"] for f in registry.collect() for s in f.samples
                if s.name == "node_filesystem_device_error"}
    assert exported == {"/", "/data", "/my disk", "/gone"}  # /run, overlay, cgroup excluded


def test_network_counters_from_another_namespaces_procfs_net(tmp_path: Path) -> None:
    # A pod without hostNetwork reads the host's counters through <host procfs>/1/net: its
    # own <procfs>/net (here an interface eth9) must not be what it reports.
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "dev").write_text(
        "Inter-| Receive | Transmit\n face |bytes packets|bytes packets\n"
        "  eth9: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n")
    host_net = FIXTURES / "psi" / "proc" / "net"
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(
        Roots(str(proc), str(tmp_path), str(tmp_path), procfs_net=str(host_net)), ["netdev"]))
    devices = {sample.labels["device"] for family in registry.collect()
               if family.name == "node_network_receive_bytes" for sample in family.samples}
    assert devices and "eth9" not in devices
    expected = procfs.parse_net_dev((host_net / "dev").read_text())
    assert devices == set(expected) - {"lo"}
