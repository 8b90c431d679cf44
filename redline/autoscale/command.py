"""`redline autoscale`: SLO spec -> KEDA or HPA scaling objects, or, with --simulate, what they
would have done over the last hour according to Prometheus."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from redline.autoscale.model import DEFAULT_SERVER
from redline.flags import SubParsers, flag_type, positive_integer, ratio

if TYPE_CHECKING:  # the builders load only when the command runs
    from redline.autoscale.objects import Options
    from redline.autoscale.replay import ReplayConfig



def _since(text: str) -> str:
    from redline.stat.command import window

    return window(text)


def add_parser(sub: SubParsers, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser(
        "autoscale", parents=[common],
        help="HPA/KEDA/VPA objects that scale on RED, and a replay of what they would do",
        description="Generate scaling objects from the SLO spec's `scaling` blocks: a KEDA "
                    "ScaledObject per service, or an autoscaling/v2 HPA with the "
                    "prometheus-adapter rules that serve its metrics (and a VPA in "
                    "updateMode Off where asked). With --simulate, replay the metrics they "
                    "read from Prometheus through the HPA algorithm instead, and print the "
                    "replicas over time.")
    add = parser.add_argument
    add("--slo", metavar="FILE", required=True,
        help="SLO spec with `scaling` blocks (YAML, docs/autoscaling.md) (default: none, "
             "required)")
    add("--format", choices=("keda", "hpa"), default="keda",
        help="KEDA ScaledObjects, or HPAs plus prometheus-adapter rules; with --simulate, "
             "whether KEDA's fallback applies (default: keda)")
    add("--out", metavar="DIR",
        help="write the files into DIR, naming each on stderr (default: standard output)")
    add("--server-address", default=DEFAULT_SERVER, metavar="URL",
        help=f"keda: the Prometheus KEDA queries, from inside the cluster "
             f"(default: {DEFAULT_SERVER})")
    add("--simulate", action="store_true",
        help="replay the objects' metrics from --prometheus instead of writing objects "
             "(default: off)")
    add("--prometheus", default="http://127.0.0.1:9090", metavar="URL",
        help="simulate: Prometheus base URL (default: http://127.0.0.1:9090)")
    add("--since", type=flag_type(_since), default="1h", metavar="DURATION",
        help="simulate: how far back to replay, a PromQL duration (default: 1h)")
    add("--step", type=flag_type(positive_integer), default=15, metavar="S",
        help="simulate: seconds between HPA decisions, the controller's sync period "
             "(default: 15)")
    add("--replicas", type=flag_type(positive_integer), metavar="N",
        help="simulate: replicas at the start (default: the pods Prometheus saw then, or "
             "min_replicas)")
    add("--pod-label", default="instance", metavar="LABEL",
        help="simulate: the label that tells scraped pods apart, to count them "
             "(default: instance; pod with Kubernetes discovery)")
    add("--tolerance", type=flag_type(ratio), default=0.1, metavar="RATIO",
        help="simulate: the HPA's tolerance, the controller's "
             "--horizontal-pod-autoscaler-tolerance (default: 0.1)")
    add("--service", metavar="NAME",
        help="only this service (default: every service with a scaling block)")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class AutoscaleConfig:
    slo: Path
    out: Path | None  # None: standard output
    service: str | None
    options: Options
    replay: ReplayConfig | None  # None: write objects


def config(args: argparse.Namespace) -> AutoscaleConfig:
    from redline.autoscale.objects import Options
    from redline.autoscale.replay import ReplayConfig

    replay = ReplayConfig(prometheus=args.prometheus, since=args.since, step=args.step,
                          replicas=args.replicas, pod_label=args.pod_label,
                          keda=args.format == "keda", tolerance=args.tolerance) \
        if args.simulate else None
    return AutoscaleConfig(slo=Path(args.slo), out=Path(args.out) if args.out else None,
                           service=args.service,
                           options=Options(format=args.format,
                                           server_address=args.server_address),
                           replay=replay)


def run(args: argparse.Namespace) -> int:
    return autoscale(config(args))


def autoscale(cfg: AutoscaleConfig) -> int:
    from redline.alerts.output import write_files
    from redline.alerts.spec import Spec, load_spec
    from redline.autoscale.chart import report
    from redline.autoscale.objects import render, scaled
    from redline.autoscale.replay import replays
    from redline.config import ConfigError

    spec = load_spec(cfg.slo)
    if cfg.service is not None:
        chosen = tuple(slo for slo in spec.slos if slo.service == cfg.service)
        if not chosen:
            raise ConfigError(f"--service: {cfg.slo} has no SLO for {cfg.service!r}")
        spec = Spec(spec.period, spec.period_seconds, chosen)
    if cfg.replay is not None:
        text = report(replays(scaled(spec), cfg.replay))
        if cfg.out is None:
            sys.stdout.write(text)
        else:
            write_files(cfg.out, {Path("redline-autoscale-replay.txt"): text})
        return 0
    outputs = render(spec, cfg.options)
    if cfg.out is None:
        sys.stdout.write("---\n".join(outputs.values()))
        return 0
    write_files(cfg.out, {Path(name): text for name, text in outputs.items()})
    return 0
