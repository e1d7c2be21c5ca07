"""Idle connections from one address cannot starve a proxy's admin endpoint.

A real proxy process (webapp-0 of a process mesh). 100 idle sockets come from one loopback address; the
scraper (another loopback address, like Prometheus or the kubelet) still gets /ready and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from tests.integration.local_mesh import free_subnet
from tests.reliability.procmesh import ProcMesh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

IDLE_SOCKETS = 100


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcMesh]:
    mesh = ProcMesh(tmp_path_factory.mktemp("admin"), free_subnet(), books=1)
    try:
        yield mesh.start()
    finally:
        mesh.stop()


def get_from(source: str, admin: str, path: str) -> int:
    """GET `path` from a socket bound to `source`; the status code."""
    host, _, port = admin.rpartition(":")
    with socket.socket() as sock:
        sock.settimeout(3.0)
        sock.bind((source, 0))
        sock.connect((host, int(port)))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n".encode())
        head = sock.recv(64)
    return int(head.split(b" ")[1])


@contextlib.contextmanager
def idle_sockets(source: str, admin: str, count: int) -> Iterator[list[socket.socket]]:
    host, _, port = admin.rpartition(":")
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((source, 0))
            sock.settimeout(3.0)
            sock.connect((host, int(port)))
            opened.append(sock)
        time.sleep(0.2)  # let the proxy accept them all
        yield opened
    finally:
        for sock in opened:
            sock.close()


def test_idle_sockets_from_one_address_leave_room_for_the_scraper(mesh: ProcMesh) -> None:
    admin = mesh.pods["webapp-0"].admin
    attacker, scraper = f"{mesh.base}.0.66", f"{mesh.base}.0.3"
    with idle_sockets(attacker, admin, IDLE_SOCKETS):
        for _ in range(3):
            assert get_from(scraper, admin, "/ready") == 200
            assert get_from(scraper, admin, "/metrics") == 200


def test_idle_connections_are_closed_quickly(mesh: ProcMesh) -> None:
    admin = mesh.pods["webapp-0"].admin
    with idle_sockets(f"{mesh.base}.0.67", admin, 1) as (sock,):
        start = time.monotonic()
        sock.settimeout(6.0)
        assert sock.recv(1) == b""  # the proxy closed a connection that never sent a request
        assert time.monotonic() - start < 4.0


def test_a_full_endpoint_makes_room_for_a_new_address_by_closing_an_idle_connection() -> None:
    from meshctl.metrics.admin import AdminLimits, listen_address, start_admin_server, stop_admin_server
    from meshctl.metrics.adminapp import AdminApp

    class NoMetrics:
        def render(self) -> bytes:
            return b""

    app = AdminApp(metrics=NoMetrics(), ready=lambda: True, get_log_level=lambda: "info",
                   set_log_level=lambda _: None, config_dump=dict)  # fmt: skip

    async def scenario() -> list[bytes]:
        server = await start_admin_server("127.0.0.1", 0, app, limits=AdminLimits(max_connections=4, max_per_peer=3))
        port = listen_address(server)[1]
        held = []
        try:
            for source in ("127.0.0.11", "127.0.0.11", "127.0.0.11", "127.0.0.12"):  # full: 3 + 1
                held.append(await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)))
            await asyncio.sleep(0.05)
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.13", 0))
            writer.write(b"GET /ready HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 3)
            writer.close()
            evicted = await asyncio.wait_for(held[0][0].read(), 3)  # the busiest peer's oldest idle one
            return [answer.split(b"\r\n")[0], evicted]
        finally:
            for _, w in held:
                w.close()
            await stop_admin_server(server)

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK", b""]
