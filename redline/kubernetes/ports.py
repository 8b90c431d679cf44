"""Which of a pod's ports the ambassador fronts, and with which protocol (pure).

Never break a pod: a port is fronted by default only when it is declared HTTP (HTTP/1,
WebSocket, h2c, gRPC), because the ambassador understands HTTP and nothing is lost by putting
it in front. Everything else needs asking:
- TLS: the ambassador sees encrypted bytes only (TCP metrics, no RED), so `tls` pass-through is
  opt-in (`redline.io/ports: 8443=tls`).
- Databases, brokers and other TCP protocols: many are server-speaks-first (MySQL, SMTP), which
  protocol detection would stall, and they gain TCP metrics only; so they are never fronted
  unless listed (`redline.io/opaque-ports`, or `=opaque` in `redline.io/ports`).
- UDP and SCTP: the ambassador proxies TCP only.
A pod with no port declared HTTP keeps the behaviour of earlier releases: its first port of no
known protocol is fronted with `auto` detection (which falls back to opaque TCP).

The evidence, strongest first: `appProtocol` (Kubernetes; a field of Service ports, so it is
known where the Service is in the same input), then the container port's name (Istio's
`<protocol>[-suffix]` convention), then the well-known port numbers of databases and brokers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PORTS_ANNOTATION = "redline.io/ports"
OPAQUE_PORTS_ANNOTATION = "redline.io/opaque-ports"
PORT_ANNOTATION = "redline.io/port"
PROTOCOLS = ("auto", "http1", "h2c", "tls", "opaque")  # the ambassador's --protocol values
FRONTED_BY_DEFAULT = ("http1", "h2c")

_APP_PROTOCOLS = {
    "http": "http1", "kubernetes.io/ws": "http1", "grpc-web": "http1",
    "http2": "h2c", "kubernetes.io/h2c": "h2c", "grpc": "h2c",
    "https": "tls", "kubernetes.io/wss": "tls", "tls": "tls",
    "tcp": "opaque", "mysql": "opaque", "redis": "opaque", "mongo": "opaque",
    "postgresql": "opaque", "postgres": "opaque", "kafka": "opaque",
}
# Istio's port-name prefixes (`grpc`, `grpc-api`); `grpc-web` is HTTP/1.
_NAME_PREFIXES = {"http": "http1", "grpc-web": "http1", "http2": "h2c", "grpc": "h2c",
                  "https": "tls", "tls": "tls", "tcp": "opaque", "mongo": "opaque",
                  "mysql": "opaque", "redis": "opaque", "postgres": "opaque",
                  "postgresql": "opaque", "kafka": "opaque", "amqp": "opaque"}
# Ports of protocols that are not HTTP, as Linkerd's default opaque and skip ports.
WELL_KNOWN = {25: "SMTP", 587: "SMTP", 1433: "SQL Server", 1521: "Oracle", 2181: "ZooKeeper",
              2379: "etcd", 3306: "MySQL", 4222: "NATS", 4444: "Galera", 5432: "PostgreSQL",
              5672: "AMQP", 6379: "Redis", 9042: "Cassandra", 9092: "Kafka",
              9300: "Elasticsearch transport", 11211: "memcached", 26257: "CockroachDB",
              27017: "MongoDB"}


class PortError(ValueError):
    """An annotation that names no usable port; phrased for the user."""


@dataclass(frozen=True)
class Port:
    """A port of the pod: declared by a container, or named by number in an annotation."""

    number: int
    name: str | None = None
    container: str | None = None
    app_protocol: str | None = None
    transport: str = "TCP"

    def __str__(self) -> str:
        return f"{self.number}/{self.name}" if self.name else str(self.number)


@dataclass(frozen=True)
class Fronted:
    port: Port
    protocol: str
    why: str


@dataclass(frozen=True)
class Skipped:
    port: Port
    why: str


@dataclass(frozen=True)
class Plan:
    fronted: tuple[Fronted, ...]
    skipped: tuple[Skipped, ...]


def declared_ports(containers: list[Any], app_protocols: Mapping[Any, str]) -> list[Port]:
    """The containers' ports, with the appProtocol Services give them (by targetPort: a
    number, or a container port's name)."""
    return [Port(int(p["containerPort"]), p.get("name"), c.get("name"),
                 app_protocols.get(int(p["containerPort"]), app_protocols.get(p.get("name"))),
                 str(p.get("protocol", "TCP")))
            for c in containers for p in c.get("ports") or []]


def classify(port: Port) -> tuple[str | None, str]:
    """(protocol or None when unknown, the evidence)."""
    if port.transport != "TCP":
        return None, f"{port.transport}: the ambassador proxies TCP only"
    if port.app_protocol:
        protocol = _APP_PROTOCOLS.get(port.app_protocol.lower())
        return protocol, f"appProtocol {port.app_protocol}"
    if port.name:
        for prefix, protocol in _NAME_PREFIXES.items():
            if port.name == prefix or port.name.startswith(prefix + "-"):
                return protocol, f"port name {port.name}"
    if port.number in WELL_KNOWN:
        return "opaque", f"{WELL_KNOWN[port.number]}'s port"
    return None, "protocol not declared (no appProtocol, known port name or well-known number)"


def choose(containers: list[Any], annotations: Mapping[str, Any],
           app_protocols: Mapping[Any, str] | None = None) -> Plan:
    """The ports to front and those skipped, each with why; PortError for a bad annotation."""
    ports = declared_ports(containers, app_protocols or {})
    opaque = {p: "listed in " + OPAQUE_PORTS_ANNOTATION
              for p in _port_list(annotations, OPAQUE_PORTS_ANNOTATION, ports)}
    asked: dict[Port, tuple[str, str]] = {}
    if PORTS_ANNOTATION in annotations:
        asked = _explicit(annotations[PORTS_ANNOTATION], ports)
        listed = f"not listed in {PORTS_ANNOTATION}"
    elif PORT_ANNOTATION in annotations:
        [port] = _port_list(annotations, PORT_ANNOTATION, ports, single=True)
        asked = {port: (classify(port)[0] or "auto", f"named by {PORT_ANNOTATION}")}
        listed = f"{PORT_ANNOTATION} names another port"
    if overlap := [str(p) for p in opaque if p in asked]:
        raise PortError(f"{OPAQUE_PORTS_ANNOTATION}: {', '.join(overlap)} also named by "
                        f"{PORTS_ANNOTATION} or {PORT_ANNOTATION}")
    fronted = [Fronted(p, protocol, why) for p, (protocol, why) in asked.items()]
    fronted += [Fronted(p, "opaque", why) for p, why in opaque.items()]
    if asked:
        skipped = [Skipped(p, listed) for p in ports if p not in asked and p not in opaque]
        return Plan(tuple(fronted), tuple(skipped))
    return _by_default(ports, fronted)


def _by_default(ports: list[Port], fronted: list[Fronted]) -> Plan:
    chosen = {f.port for f in fronted}
    skipped: list[Skipped] = []
    unknown: list[tuple[Port, str]] = []
    for port in (p for p in ports if p not in chosen):
        protocol, why = classify(port)
        if protocol in FRONTED_BY_DEFAULT:
            fronted.append(Fronted(port, protocol, why))
        elif protocol is None and port.transport == "TCP":
            unknown.append((port, why))
        elif protocol is None:
            skipped.append(Skipped(port, why))
        else:
            skipped.append(Skipped(port, f"{why} ({protocol}): fronted only when listed in "
                                         f"{_how_to_ask(protocol)}"))
    if unknown and not any(f.protocol in FRONTED_BY_DEFAULT for f in fronted):
        port, why = unknown.pop(0)
        fronted.append(Fronted(port, "auto",
                               f"{why}; the pod's first such port, with protocol detection"))
    skipped += [Skipped(p, f"{why}; declare it HTTP (appProtocol, a port name http-...) or "
                           f"list it in {PORTS_ANNOTATION}") for p, why in unknown]
    return Plan(tuple(fronted), tuple(skipped))


def _how_to_ask(protocol: str) -> str:
    return f"{PORTS_ANNOTATION} (PORT=tls)" if protocol == "tls" else OPAQUE_PORTS_ANNOTATION


def _find(text: str, ports: list[Port], where: str) -> Port:
    """A port named by number (declared or not) or by a declared port's name."""
    text = text.strip()
    for port in ports:
        if text in (str(port.number), port.name):
            return port
    if not text.isdigit():
        names = ", ".join(p.name for p in ports if p.name) or "none"
        raise PortError(f"{where}: {text!r} is neither a port number nor a container port's "
                        f"name (names: {names})")
    if not 0 < int(text) < 65536:
        raise PortError(f"{where}: {text!r} is not a port; expected 1 to 65535")
    return Port(int(text))


def _port_list(annotations: Mapping[str, Any], key: str, ports: list[Port],
               single: bool = False) -> list[Port]:
    """Ports of a comma-separated annotation (or of one port, with `single`)."""
    if key not in annotations:
        return []
    entries = [str(annotations[key])] if single else str(annotations[key]).split(",")
    found = [_find(entry, ports, key) for entry in entries if entry.strip() or single]
    if len(set(found)) != len(found):
        raise PortError(f"{key}: {annotations[key]!r} lists a port twice")
    return found


def _explicit(value: Any, ports: list[Port]) -> dict[Port, tuple[str, str]]:
    """`redline.io/ports: "8080=http1, 9090=h2c, grpc"`: PORT[=PROTOCOL], PORT a number or a
    container port's name; without a protocol, the port's declared one or `auto`."""
    where = PORTS_ANNOTATION
    asked: dict[Port, tuple[str, str]] = {}
    for entry in str(value).split(","):
        text, sep, protocol = entry.partition("=")
        if not text.strip():
            raise PortError(f"{where}: expected PORT[=PROTOCOL] entries separated by commas, "
                            f"got {value!r}")
        port = _find(text, ports, where)
        protocol = protocol.strip() if sep else (classify(port)[0] or "auto")
        if protocol not in PROTOCOLS:
            raise PortError(f"{where}: {entry.strip()!r}: unknown protocol {protocol!r}; "
                            f"expected one of {', '.join(PROTOCOLS)}")
        if port in asked:
            raise PortError(f"{where}: {value!r} lists {port} twice")
        asked[port] = (protocol, f"listed in {where}")
    return asked
