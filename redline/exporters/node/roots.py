"""What every collector reads through and builds with: the host's roots, one file read, and
metric families built in one go."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample


@dataclass(frozen=True)
class Roots:
    """Where the host's /proc, /sys and / are (mounted read-only into the DaemonSet's pod)."""

    procfs: str = "/proc"
    sysfs: str = "/sys"
    rootfs: str = "/"
    # The network namespace whose counters are read: <procfs>/net is the reader's own, so a
    # pod without hostNetwork points this at <host procfs>/1/net, the host's (init's) netns.
    procfs_net: str = ""
    # The cgroups collector's (off by default): the host's cgroup mount and how much of it is
    # exported (levels below the root, cgroups per scrape), so a node's series stay bounded.
    cgroupfs: str = "/sys/fs/cgroup"
    cgroups_depth: int = 4
    cgroups_max: int = 1000
    # Not an __init__ argument, so that dataclasses.replace (one copy per scrape) starts each
    # copy empty: as an argument, the copy shared its dict and served the first scrape's
    # /proc/stat for ever.
    cache: dict[str, str] = field(default_factory=dict, init=False, compare=False, hash=False,
                                  repr=False)

    def proc(self, *parts: str) -> str:
        return os.path.join(self.procfs, *parts)

    def net(self, *parts: str) -> str:
        return os.path.join(self.procfs_net or self.proc("net"), *parts)

    def sys(self, *parts: str) -> str:
        return os.path.join(self.sysfs, *parts)

    def root(self, *parts: str) -> str:
        return os.path.join(self.rootfs, *parts)

    def read_proc(self, name: str) -> str:
        """A /proc file, read once per scrape (cpu and stat both need /proc/stat): each
        scrape works on its own copy of the roots, see NodeCollector.collect."""
        if name not in self.cache:
            self.cache[name] = read(self.proc(name))
        return self.cache[name]


def read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


Families = list[Metric]


def family(kind: str, name: str, documentation: str, samples: Iterable[tuple[float, ...]]
           | None = None, labelnames: tuple[str, ...] = (),
           labelled: Iterable[tuple[tuple[str, ...], float]] = ()) -> Metric:
    """A family built in one go: a node_exporter scrape has hundreds of samples, and
    prometheus_client's add_metric costs more than reading the files."""
    metric = Metric(name, documentation, kind)
    sample_name = f"{name}_total" if kind == "counter" else name
    if samples is not None:
        metric.samples = [Sample(sample_name, {}, value) for (value,) in samples]
    else:
        metric.samples = [Sample(sample_name, dict(zip(labelnames, labels, strict=True)), value)
                          for labels, value in labelled]
    return metric


def single(kind: str, name: str, documentation: str, value: float) -> Metric:
    return family(kind, name, documentation, [(value,)])
