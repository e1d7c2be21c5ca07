"""Success-rate failure accrual through real processes: two books replicas (app + inbound proxy, mTLS)
behind webapp's outbound proxy balancing round robin; books-1's app fails 40 % of its requests but never
twice in a row. Under `consecutiveFailures: 5` it is never ejected and a fifth of all requests fail; under
`successRate: {threshold: 0.8, window: 30s, minRequests: 20}` it is ejected (with the same backoff and
probe) and the failure rate falls to less than half of that. Both are measured over the same number of requests."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.local_mesh import free_subnet
from tests.reliability.procmesh import BOOKS_AUTHORITY, NS, ProcMesh, wait_http_ok

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REQUESTS = 600
PATTERN = ".x.x."  # books-1: 2 failures in 5, never 2 in a row


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcMesh]:
    mesh = ProcMesh(tmp_path_factory.mktemp("accrual"), free_subnet(), books=2)
    try:
        mesh.start()
        failing = mesh.pods["books-1"]
        mesh.kill("books-1/app")
        mesh.spawn("books-1/app", "tests.reliability.app", "--listen", failing.app, "--pod", failing.name,
                   "--fail-pattern", PATTERN)  # fmt: skip
        wait_http_ok(failing.app, "/", 30, mesh.procs["books-1/app"])  # the pattern starts with a success
        yield mesh
    finally:
        mesh.stop()


def apply_profile(mesh: ProcMesh, accrual: dict[str, Any]) -> None:
    """The books ServiceProfile, in force at webapp's proxy when this returns."""
    before = mesh.proxy_dump("webapp-0")["snapshot_version"]
    doc = {"apiVersion": "meshctl.io/v1alpha1", "kind": "ServiceProfile",
           "metadata": {"name": f"books.{NS}.svc.cluster.local", "namespace": NS},
           "spec": {"routes": [], "loadBalancer": {"policy": "round-robin"}, "failureAccrual": accrual}}  # fmt: skip
    (mesh.root / "config" / "books-profile.yaml").write_text(json.dumps(doc))
    deadline = time.monotonic() + 20
    while mesh.proxy_dump("webapp-0")["snapshot_version"] == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mesh.proxy_dump("webapp-0")["snapshot_version"] != before


def run(mesh: ProcMesh) -> tuple[float, int]:
    """(share of REQUESTS that failed, ejections of the breaker) for one sequential run."""
    host, _, port = mesh.pods["webapp-0"].outbound.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    failed = 0
    try:
        for n in range(REQUESTS):
            conn.request("GET", f"/r/{n}", headers={"Host": BOOKS_AUTHORITY})
            response = conn.getresponse()
            response.read()
            failed += response.status != 200
            time.sleep(0.002)  # ~3 s: the first penalties (1 s, 2 s) end and probes go out
    finally:
        conn.close()
    breaker = mesh.proxy_dump("webapp-0")["circuit_breakers"][BOOKS_AUTHORITY]
    return failed / REQUESTS, int(breaker["ejections"])


def test_a_replica_failing_40_percent_never_in_a_row_is_ejected_by_success_rate_only(mesh: ProcMesh) -> None:
    apply_profile(mesh, {"consecutiveFailures": 5, "minPenalty": "1s", "maxPenalty": "10s"})
    by_run, ejections = run(mesh)
    print(f"\nconsecutiveFailures 5: {by_run:.1%} failed, {ejections} ejections")
    assert ejections == 0 and abs(by_run - 0.2) <= 0.03  # half the requests, 40 % of those

    apply_profile(mesh, {"successRate": {"threshold": 0.8, "window": "30s", "minRequests": 20},
                         "minPenalty": "1s", "maxPenalty": "10s"})  # fmt: skip
    by_rate, ejections = run(mesh)
    print(f"successRate 0.8/30s/20: {by_rate:.1%} failed, {ejections} ejections")
    assert ejections >= 1 and by_rate <= by_run / 2, (by_rate, ejections)
    endpoints = mesh.proxy_dump("webapp-0")["circuit_breakers"][BOOKS_AUTHORITY]["endpoints"]
    assert any(state["state"] in ("ejected", "probation") or state["success_rate"] is not None
               for state in endpoints.values())  # fmt: skip
