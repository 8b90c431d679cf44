"""RED recording rules: rate, errors and duration of HTTP routes and gRPC methods, and of each
service, for the overview dashboard written with `redline dashboards --recorded` and for the SLO
rules (redline/alerts/slo_rules.py), which read these records instead of the raw series.

The raw series are read once per evaluation, at the finest level that anything reads (a route,
a gRPC method): requests, failed requests and buckets, one rule each. Every per-service record
is a sum of those records, never a second pass over the raw series: at 1,000 services x 10
routes x 4 statuses a bucket rule reads 600,000 raw series, its sum per service the 150,000
recorded ones. Sums of sums are exact (a sum is a sum however it is split), and both sides of
every ratio come from records of the same evaluation.

Only what that dashboard or the SLO rules read is recorded (tests/dashboards check it): each
rule is evaluated over every service's series every interval, so one without a reader is pure
cost. The expressions are the dashboards' own (redline/queries.py) with a 5m window.
"""

from __future__ import annotations

from dataclasses import dataclass

from redline import queries
from redline.alerts.rules import RecordingRule, recording
from redline.queries import DEFAULT, GRPC_SERVER, HTTP_SERVER, Grouping, RequestMetrics

WINDOW = "5m"


@dataclass(frozen=True)
class Family:
    """One kind of server request: its metrics, the name its records carry, and the level
    below a service that its raw series are recorded at."""

    metrics: RequestMetrics
    prefix: str  # of the records' metric part: http_server, rpc_server
    detail: str  # the level below the service: service_route, service_method
    detail_labels: tuple[str, ...]  # what that level adds to the service's labels


HTTP = Family(HTTP_SERVER, "http_server", "service_route", ("http_route",))
# A gRPC method is named by both labels (/package.Service/Method): what a route is to HTTP.
GRPC = Family(GRPC_SERVER, "rpc_server", "service_method", ("rpc_service", "rpc_method"))
FAMILIES = {"http": HTTP, "grpc": GRPC}


def requests_name(level: str, family: Family = HTTP) -> str:
    return f"{level}:{family.prefix}_requests:rate{WINDOW}"


def errors_name(level: str, family: Family = HTTP) -> str:
    return f"{level}:{family.prefix}_errors:rate{WINDOW}"


def error_ratio_name(level: str, family: Family = HTTP) -> str:
    return f"{level}:{family.prefix}_errors:ratio_rate{WINDOW}"


def buckets_name(level: str, family: Family = HTTP) -> str:
    return f"{level}_le:{family.metrics.bucket}:rate{WINDOW}"


def family_rules(family: Family, grouping: Grouping = DEFAULT) -> list[RecordingRule]:
    """The raw series of `family` read once, by route or method, then summed by service."""
    service, level = grouping.service, family.detail
    detail = (*service, *family.detail_labels)
    metrics = family.metrics

    def per_service(name: str, *labels: str) -> str:
        return queries.aggregate("sum", (*service, *labels), name)

    return [
        recording(requests_name(level, family),
                  queries.requests(metrics, (), detail, WINDOW)),
        recording(errors_name(level, family), queries.errors(metrics, (), detail, WINDOW)),
        recording(buckets_name(level, family),
                  queries.sum_rate(metrics.bucket, (), (*detail, "le"), WINDOW)),
        recording(requests_name("service", family),
                  per_service(requests_name(level, family))),
        # 0 for a service without a failed request (its error ratio is 0%, not missing)
        recording(errors_name("service", family),
                  f"{per_service(errors_name(level, family))}\nor\n"
                  f"{requests_name('service', family)} * 0"),
        recording(error_ratio_name("service", family),
                  f"{errors_name('service', family)}\n/\n{requests_name('service', family)}"),
        recording(buckets_name("service", family),
                  per_service(buckets_name(level, family), "le")),
    ]


def recording_rules(grouping: Grouping = DEFAULT) -> list[RecordingRule]:
    """HTTP and gRPC, by service and by route or method, and by cluster where series have
    one. A family without series records nothing: its rules cost an index lookup."""
    return [rule for family in FAMILIES.values() for rule in family_rules(family, grouping)]
