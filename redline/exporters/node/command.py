"""`redline node-exporter`: flags -> NodeExporterConfig -> serve the node's USE metrics on
--listen until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os

from redline.config import ConfigError
from redline.exporters.node.collectors import (
    COLLECTORS,
    OPTIONAL_COLLECTORS,
    Roots,
    collector_list,
)
from redline.exporters.node.exporter import NodeExporterConfig, serve
from redline.flags import SubParsers, flag_type, host_port, positive_integer


def add_parser(sub: SubParsers,
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "node-exporter", parents=[common],
        help="USE metrics of this node, compatible with node_exporter",
        description="Export the node's USE metrics with node_exporter's names, labels and "
                    "values, read from procfs and sysfs at scrape time. /readyz is ready while "
                    "PROCFS/stat can be read (docs/node-exporter.md).",
    )
    add = parser.add_argument
    add("--listen", type=flag_type(host_port), default=("0.0.0.0", 9100), metavar="H:P",
        help="where /metrics, /healthz and /readyz are served (default 0.0.0.0:9100)")
    add("--procfs", default="/proc", metavar="DIR", help="the host's /proc (default /proc)")
    add("--sysfs", default="/sys", metavar="DIR", help="the host's /sys (default /sys)")
    add("--rootfs", default="/", metavar="DIR", help="the host's / (default /)")
    add("--procfs-net", default="", metavar="DIR",
        help="the /proc/net of the network namespace to report (default PROCFS/net, this "
             "process's own); in a pod without hostNetwork, the host's is PROCFS/1/net")
    add("--collectors", type=flag_type(collector_list), default=",".join(COLLECTORS),
        metavar="LIST",
        help=f"collectors to run, comma-separated (default all: {','.join(COLLECTORS)}; "
             f"off unless named: {','.join(OPTIONAL_COLLECTORS)})")
    add("--cgroupfs", default=Roots.cgroupfs, metavar="DIR",
        help=f"the host's cgroup mount, read by the cgroups collector (default {Roots.cgroupfs})")
    add("--cgroups-depth", type=flag_type(positive_integer), default=Roots.cgroups_depth,
        metavar="N", help="cgroups collector: levels below the root cgroup to walk (default "
                          f"{Roots.cgroups_depth}: kubelet's containers and Docker's)")
    add("--cgroups-max", type=flag_type(positive_integer), default=Roots.cgroups_max,
        metavar="N", help="cgroups collector: cgroups exported per scrape, the shallowest first "
                          f"(default {Roots.cgroups_max})")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> NodeExporterConfig:
    directories = [("--procfs", args.procfs), ("--sysfs", args.sysfs), ("--rootfs", args.rootfs)]
    if args.procfs_net:  # empty: PROCFS/net, checked with --procfs
        directories.append(("--procfs-net", args.procfs_net))
    for flag, path in directories:
        if not os.path.isdir(path):
            raise ConfigError(f"{flag}: {path}: expected a directory")
    if "cgroups" in args.collectors and not os.path.isdir(args.cgroupfs):
        raise ConfigError(f"--cgroupfs: {args.cgroupfs}: expected a directory")
    return NodeExporterConfig(Roots(args.procfs, args.sysfs, args.rootfs, args.procfs_net,
                                    args.cgroupfs, args.cgroups_depth, args.cgroups_max),
                              args.collectors, args.listen)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(serve(config_from_args(args)))
