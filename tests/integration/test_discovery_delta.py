"""An endpoint change reaches real proxies as a delta, and their routing follows it.

Real processes (tests.reliability.procmesh): the control plane, webapp-0's outbound proxy and two books
replicas (app + inbound proxy). The proxies ask for deltas; the control plane's counters tell complete
snapshots from deltas, and what webapp-0 routes to is read from its /config.json and its answers.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.local_mesh import free_subnet
from tests.reliability.procmesh import BOOKS_AUTHORITY, NS, ProcMesh, http_get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[ProcMesh]:
    mesh = ProcMesh(tmp_path, free_subnet())
    try:
        yield mesh.start()
    finally:
        mesh.stop()


def _sent(mesh: ProcMesh) -> dict[str, int]:
    status, text = http_get(mesh.control_admin, "/metrics")
    assert status == 200
    return {kind: int(m.group(1)) for kind in ("snapshots", "deltas")
            if (m := re.search(rf"^control_{kind}_sent_total (\d+)$", text, re.MULTILINE))}  # fmt: skip


def _answered_by(mesh: ProcMesh, count: int) -> set[str]:
    host, _, port = mesh.pods["webapp-0"].outbound.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    pods = set()
    try:
        for _ in range(count):
            conn.request("GET", "/", headers={"Host": BOOKS_AUTHORITY})
            response = conn.getresponse()
            body = response.read().decode()
            assert response.status == 200, (response.status, body)
            pods.add(body.split(" ")[0])
    finally:
        conn.close()
    return pods


def _routes_to(mesh: ProcMesh, want: set[str], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while {e.split(" ")[1] for e in mesh.books_endpoints()} != want:
        assert time.monotonic() < deadline, f"webapp-0 routes to {mesh.books_endpoints()}, expected {sorted(want)}"
        time.sleep(0.05)


def _write(mesh: ProcMesh, control: dict[str, object]) -> None:
    path = mesh.root / "control.json"
    path.with_suffix(".tmp").write_text(json.dumps(control))
    path.with_suffix(".tmp").replace(path)  # the poller sees the old or the new file, never half of one


def _wait_version(mesh: ProcMesh, above: int, within_s: float = 10.0) -> int:
    deadline = time.monotonic() + within_s
    while True:
        version: int = mesh.proxy_dump("webapp-0")["snapshot_version"]
        if version > above:
            return version
        assert time.monotonic() < deadline, f"webapp-0 still has snapshot {version}"
        time.sleep(0.05)


def test_an_endpoint_change_arrives_as_a_delta_and_routing_follows_it(mesh: ProcMesh) -> None:
    _routes_to(mesh, {"books-0", "books-1"})
    assert _answered_by(mesh, 20) == {"books-0", "books-1"}
    control = json.loads((mesh.root / "control.json").read_text())
    # More of a mesh than books alone: a delta larger than the whole snapshot is sent as the snapshot.
    version = mesh.proxy_dump("webapp-0")["snapshot_version"]
    identity = mesh.pods["books-0"].identity
    control["services"] += [
        {"name": f"shelf-{i}", "namespace": NS, "port": 7000, "protocol": "http", "endpoints": [
            {"address": f"{mesh.base}.3.{i + 1}", "port": 4143, "pod": f"shelf-{i}-0", "identity": identity}]}
        for i in range(4)
    ]  # fmt: skip
    _write(mesh, control)
    version = _wait_version(mesh, version)
    before = _sent(mesh)

    (books1,) = [e for e in control["services"][0]["endpoints"] if e["pod"] == "books-1"]
    books1["ready"] = False
    _write(mesh, control)
    _routes_to(mesh, {"books-0"})
    assert _answered_by(mesh, 20) == {"books-0"}
    assert mesh.proxy_dump("webapp-0")["snapshot_version"] > version

    after = _sent(mesh)
    assert after["snapshots"] == before["snapshots"]  # no proxy got the whole mesh again ...
    assert after["deltas"] >= before["deltas"] + len(mesh.pods)  # ... every one got the change as a delta
    assert "discovery disconnected" not in mesh.log("webapp-0/proxy")
