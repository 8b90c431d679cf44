"""The relays of opaque and TLS pass-through connections, for tests that must hold on each: the
native relay's two ways of moving bytes (relay.py, where the extension is built) and asyncio."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from redline.sidecars.ambassador import relay

RELAYS = [relay.COPY, relay.SPLICE, "python"]


def environment(which: str) -> dict[str, str]:
    """What a `redline ambassador` subprocess needs to relay with `which`."""
    if which != "python" and not relay.compiled():
        pytest.skip("the native relay is not built here (no C compiler at install)")
    return {relay.ENV: relay.OFF if which == "python" else which}


@pytest.fixture(params=RELAYS)
def each_relay(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[str]:
    """Run the test once per relay in this process (in-process ambassadors)."""
    for name, value in environment(str(request.param)).items():
        monkeypatch.setenv(name, value)
    assert relay.describe() == request.param
    yield str(request.param)
