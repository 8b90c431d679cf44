"""The webhook server's settings: a module of their own so that `redline inject`, which shares
the command module with `redline webhook`, does not import the server (cheroot) to show them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSettings:
    """Where and how the webhook serves; each limit has a flag of the same name."""

    listen: tuple[str, int] = ("0.0.0.0", 8443)
    threads: int = 8  # connections served at once; admission traffic is one review per pod
    handshake_timeout: float = 5.0  # the API server gives a webhook call 5 s (timeoutSeconds)
    request_timeout: float = 10.0  # per read or write of a request, and idle keep-alive
    drain_timeout: float = 10.0  # on SIGTERM, for in-flight requests to finish
    # The API server refuses request bodies over 3 MiB (its --max-request-bytes), so a pod's
    # AdmissionReview (the pod plus a small envelope) fits well under 4 MiB; a larger body is
    # not from the API server and is refused before it is read (413, counted).
    max_request_bytes: int = 4 * 1024 * 1024
