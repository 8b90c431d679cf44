"""The Kubernetes HPA controller's decisions, as a pure function of time and metric values: the
simulator's core. No IO: values in, replicas out.

It follows the controller (pkg/controller/podautoscaler, autoscaling/v2 with `behavior`):

1. Outside min..max, the replicas go to the nearest bound, and nothing else happens.
2. Per metric, a proposal: `ceil(total / target)` for a per-pod target (an External metric with
   an AverageValue target), `ceil(current * value / target)` for a Value target (latency); the
   current replicas when the ratio value / target lies within the tolerance (0.1) of 1.
   Values are read as the API reads a quantity, in thousandths.
3. The largest proposal wins. A metric without a value: with none left, or when the others
   would scale down, nothing changes (the controller refuses to scale down on partial data).
4. Stabilization: the proposal is clamped to [lowest proposal of the scale-up window, highest
   of the scale-down window] (each window holds the proposals of the last N seconds).
5. Policies: a scale-up adds at most what the policies allow over their periods (Max: the
   most generous policy, Min: the strictest), counted from the replicas at the period's start;
   a scale-down likewise; then min/max.

KEDA's fallback: a per-pod target whose query failed more than `failure_threshold` times in a
row reads `fallback replicas * target`, which KEDA reports in place of the metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from redline.autoscale.model import Rules, Scaling, Target

TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance, the controller's default


@dataclass(frozen=True)
class Decision:
    time: float
    values: tuple[float | None, ...]  # per target, what the HPA read (None: no value)
    proposals: tuple[int | None, ...]  # per target, before stabilization and policies
    current: int  # replicas before this decision
    replicas: int  # after it
    reason: str  # why `replicas` is not simply the largest proposal, or "" when it is


def _milli(value: float) -> float:
    """A value as the metrics API carries it: a quantity in whole thousandths."""
    return math.trunc(value * 1000) / 1000


def proposal(target: Target, value: float, current: int,
             tolerance: float = TOLERANCE) -> int:
    """The replicas one metric asks for (step 2)."""
    usage, wanted = _milli(value), _milli(target.value)
    if target.per_pod:
        ratio = usage / (wanted * current)
        return current if abs(1.0 - ratio) <= tolerance else math.ceil(usage / wanted)
    ratio = usage / wanted
    return current if abs(1.0 - ratio) <= tolerance else math.ceil(ratio * current)


def desired_replicas(scaling: Scaling, values: Mapping[str, float], current: int,
                     tolerance: float = TOLERANCE) -> int:
    """What the HPA wants right now for `values` (target key -> the service's value: total
    requests per second, total in flight, or the latency), before stabilization and rate
    limits, within min..max: the number a dashboard shows next to the current replicas."""
    found = [proposal(t, values[t.key], max(current, 1), tolerance)
             for t in scaling.targets if t.key in values]
    wanted = max(found) if found else current
    return min(max(wanted, scaling.min_replicas), scaling.max_replicas)


def _limit(rules: Rules, current: int, events: Sequence[tuple[float, int]], now: float,
           up: bool) -> int:
    """The furthest the policies let the replicas go from `current` (step 5)."""
    if rules.select == "Disabled":
        return current
    limits = []
    for policy in rules.policies:
        cutoff = now - policy.period_seconds
        changed = sum(change for time, change in events if time > cutoff)
        start = current - changed  # replicas at the period's start (changes are signed)
        if policy.type == "Pods":
            limits.append(start + policy.value if up else start - policy.value)
        elif up:
            limits.append(math.ceil(start * (1 + policy.value / 100)))
        else:
            limits.append(int(start * (1 - policy.value / 100)))
    generous = max if up else min
    strict = min if up else max
    return (generous if rules.select == "Max" else strict)(limits)


@dataclass
class Controller:
    """One HPA over time: call `decide` once per sync period (15 s by default)."""

    scaling: Scaling
    replicas: int
    keda: bool = False  # apply KEDA's fallback for failed per-pod queries
    tolerance: float = TOLERANCE
    _recommendations: list[tuple[float, int]] = field(default_factory=list)
    _events: list[tuple[float, int]] = field(default_factory=list)  # signed changes
    _failures: dict[str, int] = field(default_factory=dict)

    def decide(self, now: float, values: Mapping[str, float | None]) -> Decision:
        s, current = self.scaling, self.replicas
        read = [self._read(t, values.get(t.key)) for t in s.targets]
        proposals = tuple(None if v is None else proposal(t, v, current, self.tolerance)
                          for t, (v, _) in zip(s.targets, read, strict=True))
        if current > s.max_replicas or current < s.min_replicas:
            replicas, reason = min(max(current, s.min_replicas), s.max_replicas), "bounds"
        else:
            valid = [p for p in proposals if p is not None]
            if not valid:
                replicas, reason = current, "no metric"
            elif len(valid) < len(proposals) and max(valid) < current:
                replicas, reason = current, "partial metrics: no scale-down"
            else:
                replicas, reason = self._normalize(now, max(valid), current)
        if replicas != current:
            self._events.append((now, replicas - current))
        self.replicas = replicas
        if any(fell_back for _, fell_back in read):
            reason = ", ".join(r for r in ("fallback", reason) if r)
        return Decision(now, tuple(v for v, _ in read), proposals, current, replicas, reason)

    def _read(self, target: Target, value: float | None) -> tuple[float | None, bool]:
        """The value the HPA gets: the query's, or KEDA's fallback stand-in (True)."""
        fallback = self.scaling.fallback
        if value is not None or not (self.keda and fallback and target.per_pod):
            self._failures[target.key] = 0
            return value, False
        failures = self._failures[target.key] = self._failures.get(target.key, 0) + 1
        if failures <= fallback.failure_threshold:
            return None, False
        replicas = {"currentReplicas": self.replicas,
                    "currentReplicasIfHigher": max(self.replicas, fallback.replicas),
                    "currentReplicasIfLower": min(self.replicas, fallback.replicas),
                    }.get(fallback.behavior or "static", fallback.replicas)
        return replicas * target.value, True

    def _normalize(self, now: float, wanted: int, current: int) -> tuple[int, str]:
        """Steps 4 and 5."""
        s = self.scaling
        up_cutoff = now - s.scale_up.stabilization_seconds
        down_cutoff = now - s.scale_down.stabilization_seconds
        up = min([wanted, *(r for t, r in self._recommendations if t > up_cutoff)])
        down = max([wanted, *(r for t, r in self._recommendations if t > down_cutoff)])
        self._recommendations = [(t, r) for t, r in self._recommendations
                                 if t > min(up_cutoff, down_cutoff)]
        self._recommendations.append((now, wanted))
        stabilized = min(max(current, up), down)
        reason = "" if stabilized == wanted else (
            "scale-up stabilized" if wanted > current else "scale-down stabilized")
        if stabilized > current:
            ceiling = max(_limit(s.scale_up, current, self._events, now, up=True), current)
            if stabilized > min(ceiling, s.max_replicas):
                return min(ceiling, s.max_replicas), (
                    "max replicas" if s.max_replicas <= ceiling else "scale-up policy")
        elif stabilized < current:
            floor = min(_limit(s.scale_down, current, self._events, now, up=False), current)
            if stabilized < max(floor, s.min_replicas):
                return max(floor, s.min_replicas), (
                    "min replicas" if s.min_replicas >= floor else "scale-down policy")
        return stabilized, reason


def simulate(scaling: Scaling, times: Sequence[float],
             values: Mapping[str, Sequence[float | None]], start: int, *,
             keda: bool = False, tolerance: float = TOLERANCE) -> list[Decision]:
    """Replay: at each time, the HPA reads each target's value and decides. The replicas feed
    back: a per-pod target's value is the service's total, which the HPA divides by the
    simulated replicas (not the observed ones), so a simulated scale-up lowers the load per pod
    as it would have in the cluster. `values` holds None where there was no value."""
    controller = Controller(scaling, start, keda=keda, tolerance=tolerance)
    return [controller.decide(now, {key: series[i] for key, series in values.items()})
            for i, now in enumerate(times)]
