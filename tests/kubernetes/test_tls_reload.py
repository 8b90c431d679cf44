"""The webhook serves a renewed certificate without a restart (as cert-manager renews it)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import self_signed_certificate
from tests.process import free_port, wait_port


def served(port: int) -> str:
    return ssl.get_server_certificate(("127.0.0.1", port), timeout=5)


def served_becomes(port: int, pem: str, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ssl.PEM_cert_to_DER_cert(served(port)) == ssl.PEM_cert_to_DER_cert(pem):
            return True
        time.sleep(0.1)
    return False


def test_a_renewed_certificate_is_served_and_a_broken_one_is_not(tmp_path: Path) -> None:
    old_cert, old_key = self_signed_certificate(tmp_path, "old")
    new_cert, new_key = self_signed_certificate(tmp_path, "new")
    live = tmp_path / "live"
    live.mkdir()
    for source, target in ((old_cert, "tls.crt"), (old_key, "tls.key")):
        (live / target).write_bytes(source.read_bytes())
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "redline.cli", "webhook", "--tls-cert", str(live / "tls.crt"),
         "--tls-key", str(live / "tls.key"), "--listen", f"127.0.0.1:{port}",
         "--tls-reload", "0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, timeout=20)
        assert served_becomes(port, old_cert.read_text())
        # A renewal as a Secret volume does it: new files swapped in whole.
        for source, target in ((new_key, "tls.key"), (new_cert, "tls.crt")):
            (live / f".{target}").write_bytes(source.read_bytes())
            os.replace(live / f".{target}", live / target)
        assert served_becomes(port, new_cert.read_text())
        # A broken pair keeps the last good certificate serving.
        (live / "tls.crt").write_text("not a certificate\n")
        time.sleep(0.5)
        assert served_becomes(port, new_cert.read_text(), seconds=1)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert b"certificate reloaded" in stderr
    assert b"cannot load the changed certificate" in stderr
