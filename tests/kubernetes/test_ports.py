"""Which ports the ambassador fronts (redline/kubernetes/ports.py), and annotations that could
make a sidecar crash-loop: reported, and the pod left as it was."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from redline.kubernetes.inject import Options, image_warning, inject_documents
from redline.kubernetes.ports import PortError, choose


def container(*ports: dict[str, Any]) -> dict[str, Any]:
    return {"name": "app", "image": "registry.example/app:1", "ports": list(ports)}


def fronted(containers: list[dict[str, Any]], annotations: dict[str, str] | None = None,
            app_protocols: dict[Any, str] | None = None) -> list[tuple[int, str]]:
    plan = choose(containers, annotations or {}, app_protocols)
    return [(f.port.number, f.protocol) for f in plan.fronted]


def test_http_ones_are_fronted_by_default_and_nothing_else() -> None:
    app = container({"name": "http", "containerPort": 8080},
                    {"name": "grpc-api", "containerPort": 9000},
                    {"name": "http2", "containerPort": 8081},
                    {"name": "grpc-web", "containerPort": 8082},
                    {"name": "metrics", "containerPort": 9090},
                    {"name": "https", "containerPort": 8443},
                    {"name": "tls-peer", "containerPort": 7443},
                    {"name": "tcp-raw", "containerPort": 7000},
                    {"name": "cache", "containerPort": 6379},
                    {"name": "dns", "containerPort": 5353, "protocol": "UDP"})
    plan = choose([app], {})
    assert [(f.port.number, f.protocol) for f in plan.fronted] == [
        (8080, "http1"), (9000, "h2c"), (8081, "h2c"), (8082, "http1")]
    why = {s.port.number: s.why for s in plan.skipped}
    assert why[8443] == ("port name https (tls): fronted only when listed in redline.io/ports "
                         "(PORT=tls)")
    assert why[6379] == ("Redis's port (opaque): fronted only when listed in "
                         "redline.io/opaque-ports")
    assert why[5353] == "UDP: the ambassador proxies TCP only"
    assert why[9090].startswith("protocol not declared")
    assert set(why) == {9090, 8443, 7443, 7000, 6379, 5353}


def test_app_protocol_comes_first() -> None:
    app = container({"name": "http", "containerPort": 8080})
    assert fronted([app], app_protocols={"http": "kubernetes.io/h2c"}) == [(8080, "h2c")]
    assert fronted([app], app_protocols={8080: "grpc"}) == [(8080, "h2c")]
    # declared TLS: not fronted by default, even with an http name
    plan = choose([app], {}, {8080: "https"})
    assert plan.fronted == () and plan.skipped[0].why.startswith("appProtocol https (tls)")


def test_without_an_http_port_the_first_undeclared_one_is_detected() -> None:
    """As earlier releases did (the first port), now with protocol detection: never a
    database, TLS or UDP port."""
    app = container({"containerPort": 5432}, {"name": "web", "containerPort": 3000},
                    {"containerPort": 4000})
    plan = choose([app], {})
    assert [(f.port.number, f.protocol) for f in plan.fronted] == [(3000, "auto")]
    assert [s.port.number for s in plan.skipped] == [5432, 4000]


def test_annotations_list_ports_explicitly() -> None:
    app = container({"name": "http", "containerPort": 8080},
                    {"name": "admin", "containerPort": 9000},
                    {"name": "https", "containerPort": 8443},
                    {"name": "redis", "containerPort": 6379})
    assert fronted([app], {"redline.io/ports": "admin=http1, 8443=tls"}) == [
        (9000, "http1"), (8443, "tls")]
    # without a protocol: the declared one, else auto
    assert fronted([app], {"redline.io/ports": "http,9000"}) == [(8080, "http1"), (9000, "auto")]
    # opaque ports add TCP metrics, whatever else is chosen
    assert fronted([app], {"redline.io/opaque-ports": "6379"}) == [(6379, "opaque"),
                                                                   (8080, "http1")]
    assert fronted([app], {"redline.io/port": "redis"}) == [(6379, "opaque")]
    plan = choose([app], {"redline.io/ports": "8080"})
    assert {s.port.number: s.why for s in plan.skipped}[9000] == \
        "not listed in redline.io/ports"


@pytest.mark.parametrize(("annotations", "expected"), [
    ({"redline.io/port": "99999"}, "redline.io/port: '99999' is not a port; expected 1 to 65535"),
    ({"redline.io/port": "0"}, "redline.io/port: '0' is not a port; expected 1 to 65535"),
    ({"redline.io/port": "htpp"}, "redline.io/port: 'htpp' is neither a port number nor a "
                                  "container port's name (names: http)"),
    ({"redline.io/ports": "8080=quic"}, "redline.io/ports: '8080=quic': unknown protocol 'quic'; "
                                        "expected one of auto, http1, h2c, tls, opaque"),
    ({"redline.io/ports": "8080=http1,,9000"}, "redline.io/ports: expected PORT[=PROTOCOL] "
                                               "entries separated by commas"),
    ({"redline.io/ports": "8080,http"}, "redline.io/ports: '8080,http' lists 8080/http twice"),
    ({"redline.io/opaque-ports": "70000"}, "redline.io/opaque-ports: '70000' is not a port"),
    ({"redline.io/ports": "8080", "redline.io/opaque-ports": "http"},
     "redline.io/opaque-ports: 8080/http also named by redline.io/ports or redline.io/port"),
])
def test_bad_annotations_are_named(annotations: dict[str, str], expected: str) -> None:
    with pytest.raises(PortError) as caught:
        choose([container({"name": "http", "containerPort": 8080})], annotations)
    assert str(caught.value).startswith(expected), caught.value


POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {}},
    "spec": {"containers": [container({"name": "http", "containerPort": 8080})]},
}


@pytest.mark.parametrize(("annotations", "expected"), [
    ({"redline.io/port": "99999"}, "redline.io/port: '99999' is not a port"),
    ({"redline.io/port": "0"}, "redline.io/port: '0' is not a port"),
    ({"redline.io/service": "--admin=0.0.0.0:1"}, "annotation redline.io/service='--admin="),
    ({"redline.io/service": " web"}, "annotation redline.io/service=' web'"),
    ({"redline.io/service": "web\nx"}, "annotation redline.io/service='web\\nx'"),
])
def test_annotations_that_would_crash_loop_the_sidecar_leave_the_pod_alone(
        annotations: dict[str, str], expected: str) -> None:
    pod = copy.deepcopy(POD)
    pod["metadata"]["annotations"] = annotations
    injection = inject_documents([pod], Options())
    assert injection.documents == [pod]
    [line] = injection.report
    assert line.startswith(f"pod/web: not injected: {expected}"), line


@pytest.mark.parametrize("port", [15080, 9901])
def test_an_app_on_the_sidecars_ports_is_left_alone(port: int) -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["ports"].append({"name": "other", "containerPort": port})
    injection = inject_documents([pod], Options())
    assert injection.documents == [pod]
    assert injection.report == [
        f"pod/web: not injected: container app uses port {port} named other, which the "
        f"sidecars need (--proxy-port, --admin-port choose others)"]


def test_ports_beyond_65535_are_not_invented() -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["ports"].append({"name": "grpc", "containerPort": 9000})
    injection = inject_documents([pod], Options(proxy_port=65535))
    assert injection.documents == [pod]
    assert injection.report == ["pod/web: not injected: no free port above --proxy-port 65535 "
                                "for 9000/grpc; choose a lower one"]


@pytest.mark.parametrize(("image", "warns"), [
    ("redline:0.1.0", True), ("platform/redline:0.1.0", True), ("redline", True),
    ("registry.example.com/platform/redline:0.1.0", False), ("ghcr.io/acme/redline:0.1.0", False),
    ("localhost:5000/redline:0.1.0", False), ("localhost/redline:0.1.0", False),
    ("registry.example.com/redline@sha256:" + "0" * 64, False),
])
def test_an_image_without_a_registry_is_warned_about(image: str, warns: bool) -> None:
    assert (image_warning(image) is not None) == warns
    report = inject_documents([copy.deepcopy(POD)], Options(image=image)).report
    assert (report[0].startswith(f"image {image} names no registry")) == warns
