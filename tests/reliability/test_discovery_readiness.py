"""A proxy that is gone or draining leaves discovery within ~2 s.

Real processes: the control plane, webapp-0's proxy and two books replicas (app + proxy). What webapp-0's
proxy routes to is read from its own /config.json, i.e. the snapshot it holds.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshctl.proxy.tls import build_contexts
from tests.fakes.mesh_pki import MeshPki
from tests.integration.local_mesh import free_subnet
from tests.reliability.procmesh import ProcMesh, http_get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DROP_WITHIN_S = 2.0


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[ProcMesh]:
    mesh = ProcMesh(tmp_path, free_subnet())
    try:
        yield mesh.start()
    finally:
        mesh.stop()


def endpoints_within(mesh: ProcMesh, within_s: float, want: set[str]) -> float:
    """Seconds until webapp-0's proxy routes books to exactly the pods `want`; fails after `within_s`."""
    start = time.monotonic()
    seen: set[str] = set()
    while time.monotonic() - start < within_s:
        seen = {entry.split(" ")[1] for entry in mesh.books_endpoints()}
        if seen == want:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"books endpoints are {sorted(seen)} after {within_s:g}s, expected {sorted(want)}")


def test_a_killed_proxy_leaves_the_snapshot_and_comes_back_when_restarted(mesh: ProcMesh) -> None:
    endpoints_within(mesh, 5.0, {"books-0", "books-1"})
    mesh.kill("books-1/proxy", signal.SIGKILL)
    took = endpoints_within(mesh, DROP_WITHIN_S, {"books-0"})
    assert took < DROP_WITHIN_S
    assert "endpoint proxy" in mesh.log("control") and "is not ready" in mesh.log("control")
    status, dump = http_get(mesh.control_admin, "/config.json")
    assert status == 200 and f"{mesh.pods['books-1'].inbound} books-1 not ready" in dump

    mesh.spawn("books-1/proxy", "meshctl.proxy", "--config", str(mesh.root / "proxies" / "books-1.json"))
    endpoints_within(mesh, 60.0, {"books-0", "books-1"})  # a new process: slow to start on a busy machine


def test_a_draining_proxy_answers_not_ready_at_once_and_leaves_the_snapshot(mesh: ProcMesh) -> None:
    endpoints_within(mesh, 5.0, {"books-0", "books-1"})
    books0 = mesh.pods["books-0"]
    contexts = build_contexts(MeshPki.load(mesh.root / "identity").issue(mesh.pods["webapp-0"].identity))
    host, _, port = books0.inbound.rpartition(":")
    raw = socket.create_connection((host, int(port)), timeout=10)
    with contexts.client_h1.wrap_socket(raw, server_hostname=books0.identity) as tls:
        tls.sendall(b"GET /slow HTTP/1.1\r\nHost: books\r\n\r\n")  # in flight while the proxy drains
        time.sleep(0.3)
        mesh.kill("books-0/proxy", signal.SIGTERM)
        time.sleep(0.2)
        assert http_get(books0.admin, "/ready") == (503, "not ready\n")
        endpoints_within(mesh, DROP_WITHIN_S, {"books-1"})
        answer = tls.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200"), answer  # the request in flight was served
    assert mesh.procs["books-0/proxy"].wait(15) == 0  # and the proxy exited cleanly
