"""The simulator's core against HPA decisions computed by hand from the Kubernetes algorithm
(docs/autoscaling.md#the-simulator): tolerance, stabilization, policies, bounds, missing
metrics and KEDA's fallback."""

from __future__ import annotations

from redline.autoscale.hpa import Controller, desired_replicas, proposal, simulate
from redline.autoscale.model import (
    SCALE_DOWN,
    SCALE_UP,
    Fallback,
    Rules,
    Scaling,
    Target,
    Workload,
)

RATE = Target("requests_per_second_per_pod", 50)
P95 = Target("latency_p95_seconds", 0.25)
WORKLOAD = Workload("Deployment", "checkout", "shop")


def scaling(*targets: Target, low: int = 2, high: int = 6, down_window: int = 60,
            up: Rules = SCALE_UP, fallback: Fallback | None = None) -> Scaling:
    return Scaling(WORKLOAD, low, high, targets or (RATE,), scale_up=up,
                   scale_down=Rules(down_window, SCALE_DOWN.policies), fallback=fallback)


def test_a_recorded_ramp_up_and_down_decides_as_computed_by_hand() -> None:
    # Total requests per second every 15 s; target 50 per pod, 2..6 replicas, scale-down
    # window 60 s, the default policies.
    totals = [100, 108, 112, 400, 400, 250, 250, 250, 250, 60, 60, 60, 60]
    times = [i * 15.0 for i in range(len(totals))]
    decisions = simulate(scaling(), times, {RATE.key: list(map(float, totals))}, start=2)
    got = [(d.time, d.proposals[0], d.replicas, d.reason) for d in decisions]
    assert got == [
        (0, 2, 2, ""),  # 100 / (50 x 2) = 1.0
        (15, 2, 2, ""),  # 1.08 is within the 0.1 tolerance: ceil(108 / 50) = 3 not asked
        (30, 3, 3, ""),  # 1.12 is not: ceil(112 / 50) = 3
        # ceil(400 / 50) = 8; policies allow max(3 + 4, 2 x 3) = 7; max_replicas 6 wins
        (45, 8, 6, "max replicas"),
        (60, 8, 6, "max replicas"),
        # 250 / 300 = 0.83: ceil(250 / 50) = 5, but the highest proposal of the last 60 s
        # (8 at 45 s and 60 s) holds the scale-down
        (75, 5, 6, "scale-down stabilized"),
        (90, 5, 6, "scale-down stabilized"),
        (105, 5, 6, "scale-down stabilized"),  # 60 s holds (45, 105]: 8 at 60 s
        (120, 5, 5, ""),  # (60, 120]: 5, 5, 5
        (135, 2, 5, "scale-down stabilized"),  # 60 / 250 = 0.24: ceil(1.2) = 2; 5s in window
        (150, 2, 5, "scale-down stabilized"),
        (165, 2, 5, "scale-down stabilized"),
        (180, 2, 2, ""),  # (120, 180]: 2, 2, 2 (the 5 at 120 s just left)
    ]


def test_the_value_per_pod_follows_the_simulated_replicas() -> None:
    # The same 400 req/s: at 6 replicas it is 66.7 per pod (ratio 1.33), at 8 it is 50.
    wide = scaling(high=10)
    controller = Controller(wide, replicas=6)
    assert controller.decide(0, {RATE.key: 400.0}).replicas == 8
    assert controller.decide(15, {RATE.key: 400.0}).reason == ""
    assert controller.replicas == 8  # 400 / (50 x 8) = 1.0: nothing more to do


def test_scale_up_is_limited_by_the_policies_per_period() -> None:
    # 2 replicas asked for 20: up by max(4 pods, 100 %) per 15 s, counted from the period's
    # start. An event exactly 15 s ago is outside the period (the controller's cutoff).
    wide = scaling(high=20)
    decisions = simulate(wide, [0.0, 15.0, 30.0, 35.0],
                         {RATE.key: [1000.0, 1000.0, 1000.0, 1000.0]}, start=2)
    assert [(d.replicas, d.reason) for d in decisions] == [
        (6, "scale-up policy"), (12, "scale-up policy"), (20, ""),
        (20, "")]
    slow = scaling(high=20, up=Rules(0, SCALE_UP.policies, "Min"))
    assert [d.replicas for d in simulate(slow, [0.0, 15.0], {RATE.key: [1000.0, 1000.0]},
                                         start=2)] == [4, 8]  # min(2 + 4, 2 x 2), then 4 + 4


def test_a_scale_up_window_takes_the_lowest_recent_proposal() -> None:
    careful = scaling(high=20, up=Rules(30, SCALE_UP.policies))
    decisions = simulate(careful, [0.0, 15.0, 30.0],
                         {RATE.key: [100.0, 300.0, 300.0]}, start=2)
    # at 15 s the window (-15, 15] holds 2 (0 s) and 6: the lowest, 2, wins; at 30 s it is
    # (0, 30], which no longer holds the 2
    assert [(d.replicas, d.reason) for d in decisions] == [
        (2, ""), (2, "scale-up stabilized"), (6, "")]


def test_latency_is_a_value_target_and_the_largest_proposal_wins() -> None:
    both = scaling(RATE, P95, high=20)
    # 0.5 s against 0.25 s: ceil(2 x 4 replicas) = 8; the rate asks for ceil(100 / 50) = 2
    decision = Controller(both, replicas=4).decide(0, {RATE.key: 100.0, P95.key: 0.5})
    assert decision.proposals == (2, 8) and decision.replicas == 8
    assert proposal(P95, 0.27, 4) == 4  # 0.27 / 0.25 = 1.08: within the tolerance
    assert proposal(P95, 0.0, 4) == 0  # an idle service (the query's 0) asks for nothing


def test_missing_metrics_hold_and_partial_ones_never_scale_down() -> None:
    both = scaling(RATE, P95, high=20)
    controller = Controller(both, replicas=4)
    assert controller.decide(0, {RATE.key: None, P95.key: None}).reason == "no metric"
    held = controller.decide(15, {RATE.key: 50.0, P95.key: None})  # rate alone asks for 1
    assert (held.replicas, held.reason) == (4, "partial metrics: no scale-down")
    grown = controller.decide(30, {RATE.key: 400.0, P95.key: None})  # but may scale up
    assert grown.replicas == 8


def test_keda_falls_back_after_the_failure_threshold_and_plain_hpa_holds() -> None:
    outage = [100.0, None, None, None, None, None]
    times = [i * 15.0 for i in range(len(outage))]
    spec = scaling(high=10, fallback=Fallback(replicas=5, failure_threshold=3))
    keda = simulate(spec, times, {RATE.key: outage}, start=2, keda=True)
    # failures 1, 2, 3 hold (no metric); the 4th is past the threshold: 5 x 50 = 250 req/s
    assert [(d.replicas, d.reason) for d in keda] == [
        (2, ""), (2, "no metric"), (2, "no metric"), (2, "no metric"),
        (5, "fallback"), (5, "fallback")]
    assert keda[4].values == (250.0,)
    plain = simulate(spec, times, {RATE.key: outage}, start=2, keda=False)
    assert {d.replicas for d in plain} == {2}
    higher = scaling(high=10, fallback=Fallback(2, 1, "currentReplicasIfHigher"))
    kept = simulate(higher, [0.0, 15.0, 30.0], {RATE.key: [None, None, None]}, start=4,
                    keda=True)
    assert [d.replicas for d in kept] == [4, 4, 4]  # max(current 4, fallback 2)


def test_replicas_outside_the_bounds_go_to_the_nearest_first() -> None:
    controller = Controller(scaling(), replicas=9)
    assert (controller.decide(0, {RATE.key: 0.0}).replicas, controller.replicas) == (6, 6)
    assert Controller(scaling(), replicas=1).decide(0, {RATE.key: 500.0}).reason == "bounds"


def test_desired_replicas_is_the_instant_wish_within_the_bounds() -> None:
    spec = scaling(RATE, P95, high=20)
    assert desired_replicas(spec, {RATE.key: 420.0}, current=3) == 9  # ceil(420 / 50)
    assert desired_replicas(spec, {RATE.key: 5000.0}, current=3) == 20
    assert desired_replicas(spec, {RATE.key: 10.0}, current=3) == 2
    assert desired_replicas(spec, {RATE.key: 10.0, P95.key: 1.0}, current=3) == 12
    assert desired_replicas(spec, {}, current=3) == 3
