"""The attacked app of HTTP/2 abuse tests whose point is that every byte is relayed: an HTTP/2
server that only listens. It sends its SETTINGS (as any HTTP/2 server first does), then reads
each connection to its end and prints, as one JSON line, how many bytes it received and their
SHA-256, and the SHA-256 of what it sent: what the test compares with what the attacker sent
and received, to show the bytes were relayed unchanged both ways. It prints its port first,
then serves until its stdin closes.

    python -m tests.abuse.h2_sink [upgrade]

`upgrade`: each connection starts as an HTTP/1.1 request asking for h2c, which it grants
whatever the request's HTTP2-Settings say (a lenient server): a 101, its SETTINGS, and a 200
with no body as stream 1's response.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys

from redline.sidecars.ambassador.h2frames import END_HEADERS, END_STREAM, HEADERS, SETTINGS

EMPTY_SETTINGS = b"\x00\x00\x00" + bytes((SETTINGS, 0)) + b"\x00\x00\x00\x00"
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
# Stream 1's response: `:status 200` (HPACK static index 8), no body.
STREAM_1_OK = (b"\x00\x00\x01" + bytes((HEADERS, END_HEADERS | END_STREAM))
               + b"\x00\x00\x00\x01\x88")


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      upgrade: bool) -> None:
    digest, received = hashlib.sha256(), 0
    sent = EMPTY_SETTINGS
    try:
        if upgrade:
            head = await reader.readuntil(b"\r\n\r\n")
            digest.update(head)
            received += len(head)
            sent = SWITCHING + EMPTY_SETTINGS + STREAM_1_OK
        writer.write(sent)
        while chunk := await reader.read(1 << 20):
            digest.update(chunk)
            received += len(chunk)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass  # counted as far as it came: the test sees the difference
    print(json.dumps({"bytes": received, "sha256": digest.hexdigest(),
                      "sent_sha256": hashlib.sha256(sent).hexdigest()}), flush=True)
    writer.close()


async def serve(upgrade: bool) -> None:
    server = await asyncio.start_server(
        lambda reader, writer: _connection(reader, writer, upgrade), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1:] == ["upgrade"]))
