"""Fixtures: a real upstream app and a real `redline ambassador` subprocess in front of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.process import SidecarProcess
from tests.sidecars.ambassador.upstream import UpstreamServer


class AmbassadorProcess(SidecarProcess):
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__("ambassador", "--listen", "127.0.0.1:0", *args,
                         started="ambassador listening", env=env)
        self.port = int(str(self.started["listen"]).rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def ambassador(upstream: UpstreamServer) -> Iterator[AmbassadorProcess]:
    proc = AmbassadorProcess("--upstream", f"127.0.0.1:{upstream.port}", "--drain-delay", "0",
                             "--upstream-timeout", "5")
    yield proc
    assert proc.stop() == 0


@pytest.fixture
def counted(ambassador: AmbassadorProcess) -> Iterator[list[int]]:
    """Each test appends the number of recorded requests it sent; checked after the test."""
    before = ambassador.requests_recorded()
    sent: list[int] = []
    yield sent
    expected = before + sum(sent)
    assert ambassador.wait_recorded(expected) == expected
