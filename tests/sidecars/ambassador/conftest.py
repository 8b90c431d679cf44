"""Fixtures: a real upstream app and a real `redline ambassador` subprocess in front of it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from tests.process import SidecarProcess
from tests.sidecars.ambassador.upstream import UpstreamServer


class AmbassadorProcess(SidecarProcess):
    def __init__(self, *args: str, env: dict[str, str] | None = None,
                 listen: bool = True) -> None:
        """`listen=False`: the arguments give every --listen (several ports)."""
        super().__init__("ambassador", *(("--listen", "127.0.0.1:0") if listen else ()),
                         *args, started="ambassador listening", env=env)
        ports = cast(list[dict[str, str]], self.started["ports"])
        self.ports = [int(port["listen"].rsplit(":", 1)[1]) for port in ports]
        self.port = self.ports[0]
        self.protocol = ports[0]["protocol"]

    def aborted_at_drain(self, timeout: float) -> object:
        """After a SIGTERM: the process exits 0 within `timeout`; the connections its drain
        timeout had to abort (its `drained` log line: 0 when every one closed by itself)."""
        assert self.proc.wait(timeout=timeout) == 0
        drained = next(entry for entry in self.logs if entry.get("msg") == "drained")
        return drained["aborted_connections"]

    def tcp(self, metric: str, protocol: str, **labels: str) -> float:
        """A TCP metric (`connections`, `received_bytes`, ...) of one network protocol."""
        suffix = "" if metric.startswith("active") or metric.endswith("_count") else "_total"
        return self.value(f"tcp_server_{metric}{suffix}", network_protocol_name=protocol,
                          **labels)


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


# The HTTP/1 suites run against a port declared HTTP/1 and against one that detects it.
@pytest.fixture(scope="module", params=["auto", "http1"])
def ambassador(upstream: UpstreamServer, request: pytest.FixtureRequest
               ) -> Iterator[AmbassadorProcess]:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}", "--drain-delay", "0",
                             "--upstream-timeout", "5", "--protocol", str(request.param))
    yield proc
    assert proc.stop() == 0


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1 / shop.test."""
    tmp = tmp_path_factory.mktemp("ca")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=redline test CA", cwd=tmp)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=localhost", cwd=tmp)
    (tmp / "ext.cnf").write_text("subjectAltName=DNS:localhost,DNS:shop.test,IP:127.0.0.1\n"
                                 "basicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf",
            cwd=tmp)
    return tmp


@pytest.fixture
def counted(ambassador: AmbassadorProcess) -> Iterator[list[int]]:
    """Each test appends the number of recorded requests it sent; checked after the test."""
    before = ambassador.requests_recorded()
    sent: list[int] = []
    yield sent
    expected = before + sum(sent)
    assert ambassador.wait_recorded(expected) == expected
