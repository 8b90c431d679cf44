"""The attacked app of the rapid-reset abuse test: an HTTP/2 server that only listens. It
sends its SETTINGS (as any HTTP/2 server first does), then reads each connection to its end
and prints, as one JSON line, how many bytes it received and their SHA-256: what the test
compares with what the attacker sent, to show the bytes were relayed unchanged. It prints its
port first, then serves until its stdin closes.

    python -m tests.abuse.h2_sink
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys

from redline.sidecars.ambassador.h2frames import SETTINGS

EMPTY_SETTINGS = b"\x00\x00\x00" + bytes((SETTINGS, 0)) + b"\x00\x00\x00\x00"


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(EMPTY_SETTINGS)
    digest, received = hashlib.sha256(), 0
    try:
        while chunk := await reader.read(1 << 20):
            digest.update(chunk)
            received += len(chunk)
    except ConnectionError:
        pass  # counted as far as it came: the test sees the difference
    print(json.dumps({"bytes": received, "sha256": digest.hexdigest()}), flush=True)
    writer.close()


async def serve() -> None:
    server = await asyncio.start_server(_connection, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(serve())
