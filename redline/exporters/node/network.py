"""Network collectors with node_exporter's names and filters: device counters, protocol
statistics and connection tracking statistics of the network namespace --procfs-net names; link
speed from sysfs; the conntrack table's size and limit from the host's /proc/sys."""

from __future__ import annotations

import contextlib
import functools
import os
import re

from redline.exporters.node import procfs
from redline.exporters.node.roots import Families, Roots, family, read, single

# node_exporter's default device filter and netstat fields (of the release in
# docs/node-exporter.md: TCPOFOQueue and TCPRcvQDrop are in its default since 1.9), so that both
# export the same series. netclass filters no device by default.
NETDEV_EXCLUDE = re.compile(r"^lo$")
NETSTAT_FIELDS = re.compile(
    r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)"
    r"|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)"
    r"|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)"
    r"|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$")


def netdev(roots: Roots) -> Families:
    devices = {name: values for name, values in
               procfs.parse_net_dev(read(roots.net("dev"))).items()
               if not NETDEV_EXCLUDE.match(name)}
    # rx_nohandler is in sysfs only (node_exporter reads it over netlink)
    for name, values in devices.items():
        with contextlib.suppress(OSError, ValueError):
            values["receive_nohandler"] = float(
                read(roots.sys("class", "net", name, "statistics", "rx_nohandler")))
    columns: dict[str, list[tuple[tuple[str, ...], float]]] = {}
    for name, values in sorted(devices.items()):
        for statistic, value in values.items():
            columns.setdefault(statistic, []).append(((name,), value))
    return [family("counter", f"node_network_{statistic}",
                   f"Network device statistic {statistic}.", labelnames=("device",),
                   labelled=rows) for statistic, rows in columns.items()]


def netstat(roots: Roots) -> Families:
    """TCP retransmits, listen overflows and drops, UDP buffer errors... (untyped, as in
    node_exporter)."""
    values = procfs.parse_netstat(read(roots.net("netstat")))
    values.update(procfs.parse_netstat(read(roots.net("snmp"))))
    with contextlib.suppress(OSError):  # no snmp6 on a kernel without IPv6
        values.update(procfs.parse_snmp6(read(roots.net("snmp6"))))
    return [single("unknown", f"node_netstat_{key}",
                   f"Statistic {key.replace('_', '', 1)}.", value)
            for key, value in sorted(values.items()) if _netstat_field(key)]


@functools.cache
def _netstat_field(key: str) -> bool:
    # A few hundred kernel field names, the same at every scrape: match each once.
    return NETSTAT_FIELDS.match(key) is not None


_CONNTRACK_HELP = {
    "found": "Number of searched entries which were successful.",
    "invalid": "Number of packets seen which can not be tracked.",
    "ignore": "Number of packets seen which are already connected to a conntrack entry.",
    "insert": "Number of entries inserted into the list.",
    "insert_failed": "Number of entries for which list insertion was attempted but failed.",
    "drop": "Number of packets dropped due to conntrack failure.",
    "early_drop": "Number of dropped conntrack entries to make room for new ones, if maximum "
                  "table size was reached.",
    "search_restart": "Number of conntrack table lookups which had to be restarted due to "
                      "hashtable resizes.",
}


def conntrack(roots: Roots) -> Families:
    """Connection tracking table use against its limit (saturation of a NAT/firewall node)."""
    entries = float(read(roots.proc("sys", "net", "netfilter", "nf_conntrack_count")))
    limit = float(read(roots.proc("sys", "net", "netfilter", "nf_conntrack_max")))
    families = [
        single("gauge", "node_nf_conntrack_entries",
               "Number of currently allocated flow entries for connection tracking.", entries),
        single("gauge", "node_nf_conntrack_entries_limit",
               "Maximum size of connection tracking table.", limit),
    ]
    try:
        stats = procfs.parse_conntrack_stat(read(roots.net("stat", "nf_conntrack")))
    except OSError:
        return families
    return families + [single("gauge", f"node_nf_conntrack_stat_{key}", _CONNTRACK_HELP[key],
                              stats[key]) for key in procfs.CONNTRACK_STATS]


def netclass(roots: Roots) -> Families:
    """Link speed, to turn byte rates into utilisation (node_exporter's netclass names).

    A link whose speed the driver does not know reads -1 (a virtio NIC, a link that is down):
    node_exporter exports it as -125000 unless --collector.netclass.ignore-invalid-speed (off by
    default), and so does redline; a utilisation query must keep `> 0` speeds only."""
    speeds: list[tuple[tuple[str, ...], float]] = []
    base = roots.sys("class", "net")
    for name in sorted(os.listdir(base)):
        try:
            mbits = int(read(os.path.join(base, name, "speed")))
        except (OSError, ValueError):
            continue  # virtual devices and lo have no speed (EINVAL)
        speeds.append(((name,), float(mbits * 125_000)))  # Mbit/s in bytes/s, exact
    return [family("gauge", "node_network_speed_bytes", "Network device property: speed_bytes",
                   labelnames=("device",), labelled=speeds)]
