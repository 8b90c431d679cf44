"""An ambassador that proxies HTTP/1 and is scraped in both formats never imports
prometheus_client's package (its `__init__` and its HTTP servers, urllib and email: 5.5 MB of
RSS) nor the HTTP/2 observer (hpack, the framer, the decoder: about 1 MB): they are imported
when a scrape needs prometheus_client's encoder and at the first HTTP/2 connection."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Run in a fresh interpreter: this one imported prometheus_client for other tests.
SCRIPT = textwrap.dedent('''
    import asyncio, json, sys

    from redline.cli import build_parser
    from redline.sidecars.ambassador.command import config_from_args
    from redline.sidecars.ambassador.proxy import Ambassador

    PROMETHEUS_3 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;"
                    "version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,"
                    "*/*;q=0.1")

    async def app(reader, writer):
        try:
            while await reader.readuntil(b"\\r\\n\\r\\n"):
                writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")
        except asyncio.IncompleteReadError:  # the ambassador closed its upstream connection
            writer.close()

    async def get(port, path, accept):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\\r\\nhost: x\\r\\naccept: {accept}\\r\\n"
                     f"connection: close\\r\\n\\r\\n".encode())
        answer = await reader.read()
        writer.close()
        head, _, body = answer.partition(b"\\r\\n\\r\\n")
        assert head.startswith(b"HTTP/1.1 200 "), answer
        return head.decode(), body.decode()

    async def main():
        upstream = await asyncio.start_server(app, "127.0.0.1", 0)
        args = build_parser(command="ambassador").parse_args([
            "ambassador", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
            "--upstream", f"127.0.0.1:{upstream.sockets[0].getsockname()[1]}"])
        ambassador = Ambassador(config_from_args(args))
        await ambassador.start()
        await get(ambassador.listen_port, "/users/7", "*/*")
        scrapes = [await get(ambassador.admin_port, "/metrics", accept)
                   for accept in ("text/plain", PROMETHEUS_3)]
        print(json.dumps({"modules": sorted(sys.modules), "scrapes": scrapes}))

    asyncio.run(main())
''')


def test_an_http1_ambassador_imports_neither_prometheus_client_nor_http2() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (text_head, text), (om_head, om) = report["scrapes"]
    # the request was recorded and both formats were written
    assert 'http_route="/users/{id}"' in text and "version=0.0.4" in text_head
    assert 'http_route="/users/{id}"' in om and om.endswith("# EOF\n")
    assert "application/openmetrics-text" in om_head
    modules = report["modules"]
    assert [m for m in modules if m.partition(".")[0] == "prometheus_client"] == []
    # h2record, the HTTP/2 counters every ambassador shows from its start, is the one part
    # of the HTTP/2 observer imported
    http2 = {"hpack", *(f"redline.sidecars.ambassador.{name}"
                        for name in ("h2frames", "h2hpack", "h2streams", "http2"))}
    assert [m for m in modules if m.partition(".")[0] in http2 or m in http2] == []
    assert "redline.sidecars.ambassador.h2record" in modules
