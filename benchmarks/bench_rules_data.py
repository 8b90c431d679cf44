"""bench_rules.py's data: the synthetic RED series of N services and their backfill or
import, the SLO records' 3 days of history, the SLO spec, and the rule files of a git
revision. Sans measurement: bench_rules.py and bench_rules_anchor.py time what these build.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # redline and the central store's helpers (tests/scale)

from redline.alerts import slo_rules  # noqa: E402
from redline.alerts.generate import RuleOptions, build_groups  # noqa: E402
from redline.alerts.render import prometheus_file  # noqa: E402
from redline.alerts.spec import build_spec, parse_duration  # noqa: E402
from redline.config import Node  # noqa: E402
from redline.exporters.instruments import format_bound  # noqa: E402
from redline.exporters.red import DEFAULT_BUCKETS  # noqa: E402
from tests.scale.central import VictoriaMetrics  # noqa: E402

ROUTES = 10
STATUSES = ("200", "302", "404", "500")
# Samples every 2 minutes from 12 minutes before the run to 36 minutes after it: every 5m
# rate window has samples for the whole run (1,000 services take minutes to load and evaluate).
STEP, PAST, SAMPLES = 120, 12 * 60, 25
LE = [format_bound(b) for b in DEFAULT_BUCKETS] + ["+Inf"]


THRESHOLD = 0.25  # the SLOs' latency threshold: a bucket boundary
# The SLO records' history: every window the rules read (the longest alert window, 3d) has
# recorded samples, one per 30 s evaluation (the interval the goal names), and tiles, as after
# 3 days of running. Without it the windows read a few minutes of records and cost almost
# nothing.
HISTORY_STEP, BLOCK = 30, 2 * 3600


def spec_document(services: int) -> dict[str, Any]:
    return {"slos": [{"service": f"svc-{s}", "availability": 99.9,
                      "latency": {"threshold": THRESHOLD, "target": 99}}
                     for s in range(services)]}


def spec(services: int) -> Any:
    return build_spec(Node("bench", "", spec_document(services)))


# Run by the interpreter with redline as it was at a git revision on its path.
OLD_RULES = """
import json, sys
from pathlib import Path
from redline.alerts.generate import RuleOptions, build_groups
from redline.alerts.render import prometheus_file
from redline.alerts.spec import build_spec
from redline.config import Node
document, out = json.loads(sys.argv[1]), Path(sys.argv[2])
counts = {}
for stem, groups in build_groups(build_spec(Node("bench", "", document)), RuleOptions()).items():
    (out / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
    counts.update({g["name"]: len(g["rules"]) for g in groups})
print(json.dumps(counts))
"""


def write_rules(services: int, out: Path, revision: str | None) -> dict[str, int]:
    """The rule files of `services` SLOs into `out`, as the working tree writes them or as
    redline did at git `revision`; the rule count of each group."""
    out.mkdir(parents=True)
    counts: dict[str, int] = {}
    if revision is None:
        for stem, groups in build_groups(spec(services), RuleOptions()).items():
            (out / f"{stem}.rules.yaml").write_text(prometheus_file(groups))
            counts.update({g["name"]: len(g["rules"]) for g in groups})
        return counts
    with tempfile.TemporaryDirectory(prefix="redline-at-") as tree:
        archive = subprocess.run(["git", "archive", revision, "redline"], cwd=REPO,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        done = subprocess.run([sys.executable, "-c", OLD_RULES,
                               json.dumps(spec_document(services)), str(out)],
                              cwd=tree, env={"PYTHONPATH": tree, "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, check=True)
    counts.update(json.loads(done.stdout))
    return counts


def burns(service: int, services: int, burning: float) -> bool:
    """Whether service number `service` of `services` is failing its SLOs: the first
    `burning` share of them (rounded: 1% of 10 services is none)."""
    return service < round(burning * services)


def series(services: int, burning: float = 1.0) -> Iterator[tuple[str, float]]:
    """(name{labels}, requests per second) of every series, family by family. A burning
    service fails a few requests per thousand and most are slower than THRESHOLD, so that
    its SLOs fire (5,171 alerts for 1,000 services: a fleet-wide outage); the others have
    the same series, without a failed request or one slower than THRESHOLD."""
    for family in ("_count", "_bucket"):
        for s in range(services):
            burning_now = burns(s, services, burning)
            for r in range(ROUTES):
                for status in STATUSES:
                    error = status if status == "500" else ""
                    base = (f'service_name="svc-{s}",http_route="/r{r}/{{id}}",'
                            f'http_request_method="GET",url_scheme="http",'
                            f'http_response_status_code="{status}",error_type="{error}"')
                    rps = (1.0 + (s + r) % 7 if status != "500" else
                           0.01 * (1 + s % 5) if burning_now else 0.0)
                    name = f"http_server_request_duration_seconds{family}"
                    if family == "_count":
                        yield f"{name}{{{base}}}", rps
                    else:
                        for index, le in enumerate(LE):
                            fast = not burning_now and float(le) >= THRESHOLD
                            share = 1.0 if fast else min(1.0, (index + 1) / 12)
                            yield f'{name}{{{base},le="{le}"}}', rps * share


def samples(services: int, now: float, milliseconds: bool, burning: float = 1.0
            ) -> Iterator[str]:
    """Counters growing at their rate, one line per sample, a series' samples together."""
    start = now - PAST
    for selector, rps in series(services, burning):
        for i in range(SAMPLES):
            t = start + i * STEP
            stamp = f"{int(t * 1000)}" if milliseconds else f"{t:.0f}"
            yield f"{selector} {rps * STEP * i:g} {stamp}\n"


def backfill(services: int, now: float, data: Path, work: Path, burning: float = 1.0) -> None:
    text = work / "samples.om"
    with text.open("w") as out:
        out.writelines(samples(services, now, milliseconds=False, burning=burning))
        out.write("# EOF\n")
    subprocess.run([shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from",
                    "openmetrics", "-q", str(text), str(data)], check=True,
                   stdout=subprocess.DEVNULL)
    text.unlink()


def record_values(services: int, burning: float = 1.0) -> list[tuple[str, float]]:
    """(record{labels}, value) of the SLO base records the windows read, from the series'
    rates (constant here): requests and failed ones, timed ones and those over THRESHOLD."""
    fast_bucket = f'le="{format_bound(THRESHOLD)}"'
    sums: dict[tuple[str, str], float] = {}
    for selector, rps in series(services, burning):
        service = selector.split('service_name="', 1)[1].split('"', 1)[0]
        kinds = (["requests"] + (["errors"] if 'error_type="500"' in selector else [])
                 if "_count{" in selector else ["fast"] if fast_bucket in selector else [])
        for kind in kinds:
            sums[service, kind] = sums.get((service, kind), 0.0) + rps
        sums.setdefault((service, "errors"), 0.0)  # a service that fails no request
    values = []
    for s in range(services):
        name = f"svc-{s}"
        total = sums[name, "requests"]
        for sli, bad in (("availability", sums[name, "errors"]),
                         ("latency", total - sums[name, "fast"])):
            labels = f'{{service_name="{name}",slo="{sli}"}}'
            values += [(slo_rules.REQUESTS + labels, total), (slo_rules.ERRORS + labels, bad)]
    return values


def history(services: int, now: float, milliseconds: bool, burning: float = 1.0
            ) -> Iterator[list[str]]:
    """The base records' samples over the 3 days before the run, one every HISTORY_STEP, and
    their tiles as the tile groups write them (slo_rules.TILES): one every `step`, at its
    multiples (a group's phase), the mean of the base samples of the step that ends there.
    One list of lines per 2 h block (promtool reads its whole input once per block it writes:
    one input per block). Each base value varies by +-5%, as measured rates do, so that
    chunks compress as real ones."""
    values, rng = record_values(services, burning), random.Random(21)
    end = int(now) - int(now) % HISTORY_STEP
    start = end - 3 * 86400
    tiles = [(tile, parse_duration(tile.step) // HISTORY_STEP) for tile in slo_rules.TILES]
    recent: dict[str, deque[float]] = {selector: deque(maxlen=max(n for _, n in tiles))
                                       for selector, _ in values}
    for block in range(start - start % BLOCK, end, BLOCK):
        stamps = range(max(start, block), min(end, block + BLOCK), HISTORY_STEP)
        lines = []
        for selector, value in values:
            last, written = recent[selector], []
            for t in stamps:
                sample = value * (0.95 + 0.1 * rng.random())
                last.append(sample)
                lines.append(f"{selector} {sample:.6g} {stamp(t, milliseconds)}\n")
                for tile, count in tiles:
                    if t % (count * HISTORY_STEP) == 0 and t - start >= count * HISTORY_STEP:
                        mean = sum(list(last)[-count:]) / count
                        written.append((tile, t, mean))
            lines += [f"{tiled(selector, tile)} {mean:.6g} {stamp(t, milliseconds)}\n"
                      for tile, t, mean in sorted(written, key=lambda w: (w[0].step, w[1]))]
        yield lines


def stamp(t: int, milliseconds: bool) -> str:
    return f"{t * 1000 if milliseconds else t}"


def tiled(selector: str, tile: slo_rules.Tile) -> str:
    """The tile series of a base record's series."""
    return (selector.replace(slo_rules.REQUESTS, tile.requests)
            .replace(slo_rules.ERRORS, tile.errors))


def backfill_history(services: int, now: float, data: Path, work: Path,
                     burning: float = 1.0) -> None:
    text = work / "history.om"
    for lines in history(services, now, False, burning):
        text.write_text("".join(lines) + "# EOF\n")
        subprocess.run([shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from",
                        "openmetrics", "-q", str(text), str(data)], check=True,
                       stdout=subprocess.DEVNULL)
    text.unlink()


def import_vm(vm: VictoriaMetrics, services: int, now: float, with_history: bool,
              burning: float = 1.0) -> None:
    if with_history:
        for lines in history(services, now, milliseconds=True, burning=burning):
            vm.import_prometheus("".join(lines).encode())
    chunk: list[str] = []
    for line in samples(services, now, milliseconds=True, burning=burning):
        chunk.append(line)
        if len(chunk) >= 200_000:
            vm.import_prometheus("".join(chunk).encode())
            chunk = []
    if chunk:
        vm.import_prometheus("".join(chunk).encode())
    vm.flush()
