"""Loopback ports for tests that must name a port before they bind it (a proxy's config, a peer's address)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Not from the kernel's ephemeral range: every outgoing connection on the machine takes its local port
# from there, so a port found free there can be taken by any connect() before the test binds it.
_SPAN = 8000
_random = random.SystemRandom()  # not the test-seeded `random`: two workers would draw the same ports


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A port on `host` that nothing listens on now, below the ephemeral range."""
    high = _ephemeral_low() - 1
    low = max(1024, high - _SPAN)
    for _ in range(200):
        port = _random.randint(low, high)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on {host} between {low} and {high}")
