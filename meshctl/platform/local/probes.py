"""Small network probes: is a port free, does an HTTP endpoint answer 200, does a TCP port accept.

http.client directly (not urllib) so proxy environment variables never reroute loopback probes.
"""

from __future__ import annotations

import errno
import http.client
import socket
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from meshctl.platform.local.addresses import split_hostport


def port_in_use(address: str) -> bool:
    """True when something listens on host:port (or the address cannot be bound at all)."""
    host, port = split_hostport(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as servers set it: connections in TIME_WAIT from a previous run do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL)
    return False


def http_ok(address: str, path: str, timeout_s: float = 1.0) -> bool:
    host, port = split_hostport(address)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def http_get(address: str, path: str, timeout_s: float = 1.0) -> tuple[int, bytes] | None:
    """(status, body) of a GET, or None when the endpoint does not answer."""
    host, port = split_hostport(address)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def tcp_open(address: str, timeout_s: float = 1.0) -> bool:
    host, port = split_hostport(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def http_ok_many(checks: Iterable[tuple[str, str]], timeout_s: float = 1.0) -> list[bool]:
    """http_ok for many (address, path) at once: `status` stays fast with a dozen proxies."""
    items = list(checks)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as pool:
        return list(pool.map(lambda c: http_ok(c[0], c[1], timeout_s), items))
