"""What the end-to-end tests of the local mesh share: running the CLI against a home, polling with bounds,
HTTP and Prometheus requests, and process liveness from /proc."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
UP_TIMEOUT_S = 180.0
SCRAPE_WAIT_S = 60.0


def meshctl(home: Path, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it, against `home` only: the developer's own settings must not leak in."""
    env = {**os.environ, "MESHCTL_HOME": str(home)}
    for name in ("MESHCTL_SUBNET", "MESHCTL_PROMETHEUS_URL", "MESHCTL_PLATFORM"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "meshctl", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def eventually(probe: Callable[[], T | None], within_s: float, what: str, every_s: float = 0.5) -> T:
    """Poll until probe returns something truthy; bounded in time and count."""
    deadline = time.monotonic() + within_s
    last: T | None = None
    for _ in range(int(within_s / every_s) + 2):
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {within_s:.0f}s (last: {last!r})")


def status_json(home: Path) -> tuple[int, dict[str, Any]]:
    done = meshctl(home, "status", "-o", "json")
    return done.returncode, json.loads(done.stdout) if done.stdout else {}


def http_request(url: str, method: str = "GET", body: str | None = None) -> tuple[int, str]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=30)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def prometheus_query(base: str, query: str) -> list[dict[str, Any]]:
    status, text = http_request(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    assert status == 200, text
    data = json.loads(text)
    assert data["status"] == "success", data
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (the home directory): none may survive down."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if text in cmdline and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


_SUBNET_LOCKS = Path(os.environ.get("TMPDIR", "/tmp")) / "meshctl-test-subnets"
_held: list[int] = []  # lock file descriptors, held until this test process exits


def free_subnet() -> str:
    """A 127.N.0.0/16 that no other test process holds and where nothing listens on the mesh's addresses.

    Test runs (two checkouts, or a run beside a user's mesh on 127.77/16) must never collide: each subnet is
    claimed with an exclusive lock file for the life of the process that uses it.
    """
    import fcntl
    import random
    import socket

    _SUBNET_LOCKS.mkdir(parents=True, exist_ok=True)
    candidates = list(range(100, 250))
    random.shuffle(candidates)
    for n in candidates:
        fd = os.open(_SUBNET_LOCKS / f"{n}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        with socket.socket() as probe:
            # A mesh's control plane listens there; a stopped one may leave TIME_WAIT sockets behind that
            # still block a plain bind (as a test that takes the port does).
            try:
                probe.bind((f"127.{n}.0.2", 8086))
                in_use = False
            except OSError:
                in_use = True
        if in_use:
            os.close(fd)
            continue
        _held.append(fd)
        return f"127.{n}.0.0/16"
    raise RuntimeError(f"no free loopback subnet: every 127.N/16 (100 ≤ N < 250) is locked in {_SUBNET_LOCKS}")


def subnet_host(subnet: str, last: str) -> str:
    """The address `last` ("0.4") in a 127.N.0.0/16 subnet: "127.N.0.4"."""
    return ".".join(subnet.split(".")[:2]) + "." + last
