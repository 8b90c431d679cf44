"""`redline node-exporter`: serve the node's USE metrics on --listen until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from redline.admin import AdminServer
from redline.config import ConfigError
from redline.exporters.exposition import new_registry
from redline.exporters.node.collectors import COLLECTORS, NodeCollector, Roots
from redline.flags import SubParsers, flag_type, host_port
from redline.signals import until_stopped

log = logging.getLogger("redline.node_exporter")


def add_parser(sub: SubParsers,
               common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "node-exporter", parents=[common],
        help="USE metrics of this node, compatible with node_exporter",
        description="Export the node's USE metrics with node_exporter's names, labels and "
                    "values, read from procfs and sysfs at scrape time.",
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
    add("--collectors", default=",".join(COLLECTORS), metavar="LIST",
        help=f"collectors to run, comma-separated (default all: {','.join(COLLECTORS)})")
    parser.set_defaults(func=run)


def _collector(args: argparse.Namespace) -> NodeCollector:
    directories = [("--procfs", args.procfs), ("--sysfs", args.sysfs), ("--rootfs", args.rootfs)]
    if args.procfs_net:  # empty: PROCFS/net, checked with --procfs
        directories.append(("--procfs-net", args.procfs_net))
    for flag, path in directories:
        if not os.path.isdir(path):
            raise ConfigError(f"{flag}: {path}: expected a directory")
    reported: set[str] = set()

    def on_error(name: str, exc: Exception) -> None:
        if name not in reported:  # once per collector, not once per scrape
            reported.add(name)
            log.warning("collector failed; reported as node_scrape_collector_success 0",
                        extra={"collector": name, "error": str(exc)})

    try:
        return NodeCollector(Roots(args.procfs, args.sysfs, args.rootfs, args.procfs_net),
                             [c for c in args.collectors.split(",") if c], on_error)
    except ValueError as exc:
        raise ConfigError(f"--collectors: {exc}") from exc


async def _serve(collector: NodeCollector, listen: tuple[str, int]) -> int:
    registry = new_registry("node-exporter", collector)

    async def ready() -> tuple[bool, str]:
        return True, "ready"

    admin = AdminServer(registry, ready)
    port = await admin.start(*listen)
    log.info("node exporter listening", extra={"listen": f"{listen[0]}:{port}", "admin": port,
                                                "collectors": collector.enabled})
    await until_stopped()
    await admin.close()
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_serve(_collector(args), args.listen))
