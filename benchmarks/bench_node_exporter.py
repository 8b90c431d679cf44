"""redline node-exporter against node_exporter (Debian), side by side: scrape time and RSS.

node_exporter is limited to the collectors redline implements (the same sources, the same
series). Scrapes alternate between the two, each over its own keep-alive connection, as
Prometheus scrapes; the median time of a whole scrape (request to last byte) is compared, and
the RSS of both processes after the scrapes.

    .venv/bin/python benchmarks/bench_node_exporter.py [--scrapes 200]

With --cgroups N: the cgroups collector alone on a generated cgroup v2 tree of N cgroups in
kubelet's layout (pods of two containers, each with containerd's config.json for its names),
and the default collector set, which does not run it (no node_exporter involved).

    .venv/bin/python benchmarks/bench_node_exporter.py --cgroups 200 [--scrapes 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import free_port, rss_mb, wait_port

from redline.exporters.node.collectors import COLLECTORS as DEFAULT_COLLECTORS
from redline.exporters.node.collectors import NODE_EXPORTER_EQUIVALENT as COLLECTORS
from redline.exporters.node.collectors import VMSTAT_FIELDS


def scrape(conn: http.client.HTTPConnection) -> tuple[float, int]:
    begin = time.perf_counter()
    conn.request("GET", "/metrics")
    body = conn.getresponse().read()
    return time.perf_counter() - begin, len(body)


# A container cgroup's files as a 6.x kernel writes them (memory.stat abridged to what matters)
_CGROUP_FILES = {
    "cpu.stat": "usage_usec 29000000\nuser_usec 19500000\nsystem_usec 9500000\n"
                "nr_periods 1000\nnr_throttled 250\nthrottled_usec 12500000\n"
                "nr_bursts 0\nburst_usec 0\n",
    "cpu.max": "50000 100000\n",
    "memory.current": "299000000\n",
    "memory.max": "536870912\n",
    "memory.stat": "".join(f"{key} {n * 4096}\n" for n, key in enumerate((
        "anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables", "percpu",
        "sock", "vmalloc", "shmem", "zswap", "zswapped", "file_mapped", "file_dirty",
        "file_writeback", "swapcached", "anon_thp", "file_thp", "shmem_thp", "inactive_anon",
        "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
        "slab_unreclaimable", "slab", "workingset_refault_anon", "workingset_refault_file",
        "workingset_activate_anon", "workingset_activate_file", "pgscan", "pgsteal",
        "pgfault", "pgmajfault", "thp_fault_alloc"))),
    "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
    "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    **{f"{resource}.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=2900000\n"
                               "full avg10=0.00 avg60=0.00 avg300=0.00 total=1450000\n"
       for resource in ("cpu", "memory", "io")},
}


def cgroup_tree(base: Path, count: int) -> None:
    """`count` cgroups: the root, kubepods.slice, its burstable slice, then pods of two
    containers; every container with containerd's bundle config.json (~6 kB, as real)."""
    cgroupfs = base / "cgroup"
    bundles = base / "root/run/containerd/io.containerd.runtime.v2.task/k8s.io"
    (cgroupfs / "cgroup.controllers").parent.mkdir(parents=True)
    (cgroupfs / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    directories = [cgroupfs, cgroupfs / "kubepods.slice",
                   cgroupfs / "kubepods.slice/kubepods-burstable.slice"]
    pod = 0
    while len(directories) < count:
        uid = f"{pod:08x}_0000_4000_8000_{pod:012x}"
        pod_dir = directories[2] / f"kubepods-burstable-pod{uid}.slice"
        directories.append(pod_dir)
        for number in range(2):
            container = f"{pod:032x}{number:032x}"
            directories.append(pod_dir / f"cri-containerd-{container}.scope")
            bundle = bundles / container
            bundle.mkdir(parents=True)
            bundle.joinpath("config.json").write_text(json.dumps({
                "ociVersion": "1.1.0", "process": {"env": [f"VAR_{i}=value-{i}" * 4
                                                           for i in range(60)]},
                "annotations": {"io.kubernetes.cri.container-type": "container",
                                "io.kubernetes.cri.container-name": f"c{number}",
                                "io.kubernetes.cri.sandbox-name": f"pod-{pod}",
                                "io.kubernetes.cri.sandbox-namespace": "bench"}}))
        pod += 1
    for directory in directories[:count]:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in _CGROUP_FILES.items():
            directory.joinpath(name).write_text(text)


def cgroups_main(count: int, scrapes: int) -> None:
    with tempfile.TemporaryDirectory() as temporary:
        base = Path(temporary)
        cgroup_tree(base, count)
        runs = {"cgroups": ["--collectors", "cgroups"],
                "default": ["--collectors", ",".join(DEFAULT_COLLECTORS)]}
        print(f"{scrapes} scrapes each, {count} cgroups (cgroup v2, kubelet's layout)")
        print()
        print("| collectors | median scrape | p90 scrape | exposition size |")
        print("|---|---:|---:|---:|")
        for name, flags in runs.items():
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "redline.cli", "node-exporter", "--listen",
                 f"127.0.0.1:{port}", "--cgroupfs", str(base / "cgroup"), "--rootfs",
                 str(base / "root"), *flags],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_port(port)
                conn = http.client.HTTPConnection("127.0.0.1", port)
                scrape(conn)  # warm up
                results = [scrape(conn) for _ in range(scrapes)]
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            times = sorted(seconds for seconds, _ in results)
            print(f"| {name} | {statistics.median(times) * 1e3:.2f} ms "
                  f"| {times[int(len(times) * 0.9)] * 1e3:.2f} ms | {results[-1][1]:,} B |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--cgroups", type=int, default=0, metavar="N",
                        help="time the cgroups collector on N generated cgroups instead")
    args = parser.parse_args()
    if args.cgroups:
        cgroups_main(args.cgroups, args.scrapes)
        return
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        sys.exit("node_exporter is not installed; `make bench` installs it")
    theirs_port, ours_port = free_port(), free_port()
    theirs = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{theirs_port}", "--collector.disable-defaults",
         f"--collector.vmstat.fields={VMSTAT_FIELDS.pattern}",
         *(f"--collector.{name}" for name in COLLECTORS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ours = subprocess.Popen(
        [sys.executable, "-m", "redline.cli", "node-exporter", "--listen",
         f"127.0.0.1:{ours_port}", "--collectors", ",".join(COLLECTORS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(theirs_port)
        wait_port(ours_port)
        connections = {"node_exporter": http.client.HTTPConnection("127.0.0.1", theirs_port),
                       "redline": http.client.HTTPConnection("127.0.0.1", ours_port)}
        for conn in connections.values():
            scrape(conn)  # warm up
        times: dict[str, list[float]] = {name: [] for name in connections}
        sizes: dict[str, int] = {}
        for _ in range(args.scrapes):
            for name, conn in connections.items():
                seconds, size = scrape(conn)
                times[name].append(seconds)
                sizes[name] = size
        rss = {"node_exporter": rss_mb(theirs.pid), "redline": rss_mb(ours.pid)}
    finally:
        for proc in (theirs, ours):
            proc.terminate()
            proc.wait(timeout=10)
    median = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    print(f"{args.scrapes} scrapes each, alternating, collectors: {','.join(COLLECTORS)}")
    print()
    print("| exporter | median scrape | p90 scrape | exposition size | RSS after |")
    print("|---|---:|---:|---:|---:|")
    for name, values in times.items():
        p90 = sorted(values)[int(len(values) * 0.9)] * 1e3
        print(f"| {name} | {median[name]:.2f} ms | {p90:.2f} ms | {sizes[name]:,} B "
              f"| {rss[name]:.1f} MB |")
    print()
    print(f"scrape time ratio redline / node_exporter: "
          f"{median['redline'] / median['node_exporter']:.2f}")
    print(f"RSS ratio redline / node_exporter: {rss['redline'] / rss['node_exporter']:.2f}")


if __name__ == "__main__":
    main()
