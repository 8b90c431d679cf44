"""The demo's terminal screen, as a pure function of what was measured."""

from __future__ import annotations

from dataclasses import dataclass, field

from redline.queries import DEFAULT
from redline.stat.command import RED_COLUMNS, Key, Row, red_labels, shown_red, table

# The rows of `redline stat --by route`: (cluster, service, protocol, route or gRPC method).
RED_LABELS = red_labels(DEFAULT, by_route=True)[2]
USE_COLUMNS = ["CPU", "LOAD/CPU", "MEM", "DISK", "FS"]


@dataclass
class Screen:
    elapsed: float
    duration: float
    source: str                                   # "prometheus at URL" or "sidecars' /metrics"
    red: dict[Key, Row] = field(default_factory=dict)
    use: dict[Key, Row] = field(default_factory=dict)
    alerts: list[str] | None = None               # None: no Prometheus to evaluate them
    load: dict[str, int] = field(default_factory=dict)
    scaling: list[str] = field(default_factory=list)  # what an HPA would want, per service
    note: str = ""


def render(screen: Screen) -> str:
    sent = sum(screen.load.values())
    outcomes = " ".join(f"{k}={v}" for k, v in sorted(screen.load.items()))
    lines = [f"redline demo  {screen.elapsed:5.0f}s / {screen.duration:.0f}s   "
             f"source: {screen.source}",
             f"load: {sent} requests sent ({outcomes or 'none yet'})", ""]
    lines.append("RED per service and route")
    if screen.red:
        lines.append(table(*shown_red(screen.red, RED_LABELS), RED_COLUMNS).rstrip())
    else:
        lines.append("  (collecting: rates need two samples)")
    lines += ["", "USE per node"]
    if screen.use:
        lines.append(table(screen.use, ("instance",), USE_COLUMNS).rstrip())
    else:
        lines.append("  (collecting)")
    lines += ["", "Alerts"]
    if screen.alerts is None:
        lines.append("  (need Prometheus: install the `prometheus` package to evaluate them)")
    elif screen.alerts:
        lines += [f"  {alert}" for alert in screen.alerts]
    else:
        lines.append("  none firing or pending")
    if screen.scaling:
        lines += ["", "Autoscaling (what the HPA from the SLO spec would want now)"]
        lines += [f"  {line}" for line in screen.scaling]
    if screen.note:
        lines += ["", screen.note]
    return "\n".join(lines) + "\n"
