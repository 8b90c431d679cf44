"""statsd / DogStatsD datagrams on UDP, translated by the mapping into RED metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redline.sidecars.adapter.translate import StatsdTranslator

log = logging.getLogger("redline.adapter")


class StatsdSource(asyncio.DatagramProtocol):
    def __init__(self, address: tuple[str, int], translator: StatsdTranslator) -> None:
        self.pattern = f"statsd://{address[0]}:{address[1]}"
        self.address = address
        self.translator = translator
        self.bound = False

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self.translator.feed(data)
        except Exception:  # one bad packet never stops the listener
            self.translator.parse_errors += 1
            log.exception("statsd packet failed")

    def up(self) -> bool:
        return self.bound

    def counts(self) -> dict[str, float]:
        translator = self.translator
        return {"lines": translator.lines, "parse_errors": translator.parse_errors,
                "unmapped": translator.unmapped, "rejected_values": translator.rejected_values,
                "clamped_sample_rates": translator.clamped_rates,
                "capped_series": translator.plain.capped}
