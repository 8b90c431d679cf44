"""The listener gives every accepted connection to the handler of the port's protocol."""

from __future__ import annotations

import asyncio

import pytest

from redline.sidecars.ambassador.http1_client import ClientSide
from redline.sidecars.ambassador.listener import HANDLERS, HTTP1, Listener
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
    with pytest.raises(ValueError, match="protocol: expected one of http1, got 'h2c'"):
        Listener(("127.0.0.1", 0), "h2c", FakeOwner())
    assert sorted(HANDLERS) == ["http1"]
