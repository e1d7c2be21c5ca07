"""The network questions checks ask: an HTTP GET with a deadline, a TLS handshake as a given identity, and
a concurrent map so a dozen proxies cost one round trip, not a dozen.

http.client directly (not urllib) so proxy environment variables never reroute loopback probes.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from meshctl.errors import UnreachableError

T = TypeVar("T")
R = TypeVar("R")

MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def http_get(address: str, path: str, timeout_s: float) -> Answer:
    """GET http://address/path; UnreachableError (naming the address) when nothing answers in time."""
    host, port = split_address(address)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Connection": "close", "Accept-Encoding": "identity"})
        response = conn.getresponse()
        return Answer(response.status, response.read(MAX_BODY))
    except (OSError, http.client.HTTPException) as exc:
        raise UnreachableError(f"{address}{path}: {_why(exc)}") from None
    finally:
        conn.close()


def url_get(base_url: str, path: str, timeout_s: float, query: dict[str, str] | None = None) -> Answer:
    """GET base_url + path (+ ?query), for services known by URL (Prometheus)."""
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise UnreachableError(f"{base_url}: only http:// URLs are supported here")
    target = parts.path.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
    return http_get(f"{parts.hostname}:{parts.port or 80}", target, timeout_s)


def tls_peer(address: str, server_name: str, cafile: str, timeout_s: float, alpn: tuple[str, ...]) -> bytes:
    """Handshake with address as a client trusting only `cafile`, expecting `server_name`; the peer's leaf
    certificate (DER). ssl.SSLCertVerificationError says why the chain or name does not verify."""
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(alpn))
    host, port = split_address(address)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError:
        raise
    except (OSError, ssl.SSLError) as exc:
        raise UnreachableError(f"{address}: TLS handshake failed: {_why(exc)}") from None
    if der is None:
        raise UnreachableError(f"{address}: presented no certificate")
    return der


def concurrently(function: Callable[[T], R], items: Iterable[T], max_workers: int = 16) -> list[R]:
    """function over items in threads; results in the order of items (exceptions propagate)."""
    todo = list(items)
    if len(todo) <= 1:
        return [function(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(todo)), thread_name_prefix="probe") as pool:
        return list(pool.map(function, todo))


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
