"""The listener gives every accepted connection to the handler of the port's declared protocol;
the two protocol vocabularies meet only in its maps."""

from __future__ import annotations

import asyncio

import pytest

from redline.sidecars.ambassador import detect
from redline.sidecars.ambassador.detector import Detector
from redline.sidecars.ambassador.http1_client import ClientSide
from redline.sidecars.ambassador.http2 import Http2
from redline.sidecars.ambassador.listener import DETECTED, HANDLERS, Listener
from redline.sidecars.ambassador.passthrough import PassThrough, TlsPassThrough
from redline.sidecars.ambassador.protocols import HTTP1, LABELS, PORT_PROTOCOLS
from tests.sidecars.ambassador.pair import FakeOwner


def test_an_accepted_connection_goes_to_the_ports_handler() -> None:
    owner = FakeOwner()
    accepted: list[object] = []

    async def scenario() -> None:
        listener = Listener(("127.0.0.1", 0), HTTP1, owner)
        port = await listener.start()
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        for _ in range(100):  # the accept is reported on a later loop iteration
            if owner.connections:
                break
            await asyncio.sleep(0.01)
        accepted.extend(owner.connections)
        listener.close()
        writer.close()
        await writer.wait_closed()

    asyncio.run(scenario())
    assert len(accepted) == 1 and isinstance(accepted[0], ClientSide)


def test_a_protocol_without_a_handler_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="protocol: expected one of auto, http1, h2c, tls, "
                                         "opaque, got 'http'"):
        Listener(("127.0.0.1", 0), "http", FakeOwner())  # a label, not a --protocol value


def test_each_declared_protocol_has_a_handler_and_each_label_one_for_detection() -> None:
    assert tuple(HANDLERS) == PORT_PROTOCOLS
    assert isinstance(HANDLERS["auto"](FakeOwner()), Detector)
    assert {flag: type(HANDLERS[flag](FakeOwner())) for flag in LABELS} == {
        "http1": ClientSide, "h2c": Http2, "tls": TlsPassThrough,
        "opaque": PassThrough}
    assert sorted(DETECTED) == sorted([detect.HTTP1, detect.HTTP2, detect.TLS, detect.OPAQUE])
    # A handler's connections carry the label of what it handles.
    assert {label: LABELS[flag] for flag, label in
            [("h2c", Http2.label), ("tls", TlsPassThrough.label),
             ("opaque", PassThrough.label)]} == {"http2": "http2", "tls": "tls",
                                                 "opaque": "opaque"}
