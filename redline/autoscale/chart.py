"""A replay as text: a table of the moments the replicas (or the reason) changed, and a small
chart of the replicas over time. Pure: a Replay in, a string out."""

from __future__ import annotations

import time

from redline.autoscale.hpa import Decision
from redline.autoscale.model import ACTIVE, RATE, Target
from redline.autoscale.replay import Replay

WIDTH = 60  # chart columns
HEIGHT = 8  # chart rows at most


def _clock(stamp: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(stamp))


def column(target: Target) -> str:
    if target.key == RATE:
        return "RPS/POD"
    if target.key == ACTIVE:
        return "INFLIGHT/POD"
    return f"P{round((target.quantile or 0) * 100)}"


def _cell(target: Target, value: float | None, replicas: int) -> str:
    """What the HPA compares with the target: a per-pod value over the replicas it knew."""
    if value is None:
        return "-"
    if target.per_pod:
        return f"{value / replicas:.2f}"
    return f"{value * 1000:.0f}ms"


def _row(replay: Replay, index: int, decision: Decision) -> list[str]:
    seen = replay.observed[index]
    wanted = [p for p in decision.proposals if p is not None]
    return [_clock(decision.time),
            *(_cell(t, v, decision.current)
              for t, v in zip(replay.scaling.targets, decision.values, strict=True)),
            "-" if seen is None else f"{seen:.0f}",
            str(max(wanted)) if wanted else "-", str(decision.replicas), decision.reason]


def table(replay: Replay) -> str:
    """The first and last decision and every one that changed the replicas or the reason:
    an hour at 15 s is 240 decisions, most of them `unchanged`."""
    header = ["TIME (UTC)", *(column(t) for t in replay.scaling.targets), "PODS", "WANT",
              "REPLICAS", "NOTE"]
    rows = []
    previous: Decision | None = None
    for index, decision in enumerate(replay.decisions):
        changed = previous is None or decision.replicas != previous.replicas \
            or decision.reason != previous.reason
        if changed or index == len(replay.decisions) - 1:
            rows.append(_row(replay, index, decision))
        previous = decision
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in [header, *rows]) + "\n"


def chart(replay: Replay, width: int = WIDTH, height: int = HEIGHT) -> str:
    """Replicas over time, `#` up to the replicas of each column (the most within the
    column's share of the decisions), the bounds on the axis."""
    replicas = [d.replicas for d in replay.decisions]
    columns = min(width, len(replicas))
    buckets = [max(replicas[i * len(replicas) // columns:(i + 1) * len(replicas) // columns])
               for i in range(columns)]
    low, high = replay.scaling.min_replicas, max(replay.scaling.max_replicas, *buckets)
    rows = min(height, high - low + 1)
    levels = [high - (high - low) * r // max(rows - 1, 1) for r in range(rows)]
    label = max(len(str(level)) for level in levels)
    lines = [f"{level:>{label}} |" + "".join("#" if value >= level else " "
                                                  for value in buckets).rstrip()
             for level in levels]
    start, end = _clock(replay.times[0]), _clock(replay.times[-1])
    lines.append(" " * label + " +" + "-" * columns)
    lines.append(" " * (label + 2) + start + end.rjust(max(columns - len(start), len(end) + 1)))
    return "\n".join(lines) + "\n"


def report(replays: list[Replay]) -> str:
    parts = []
    for replay in replays:
        s, w = replay.scaling, replay.scaling.workload
        targets = ", ".join(f"{t.key} {t.value:g}" for t in s.targets)
        where = f"{w.namespace}/{w.name}" if w.namespace else w.name
        parts.append(f"{replay.service}: {w.kind} {where}, {s.min_replicas}..{s.max_replicas} "
                     f"replicas, {targets}\n\n{table(replay)}\n{chart(replay)}")
    return "\n".join(parts)
