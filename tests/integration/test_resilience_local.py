"""Retries and fault injection end to end on a real local mesh: resources applied with `meshctl apply`,
delivered by the control plane, enforced by the proxies, and seen by a client and by `meshctl routes`.

One mesh for the module, on a free loopback /16, traffic generator off, books failing 30 % of POST /books.
"""

from __future__ import annotations

import http.client
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from meshctl.platform.local.profiles import profile_document
from tests.integration.local_mesh import UP_TIMEOUT_S, eventually, free_subnet, meshctl

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]

SUBNET = free_subnet()
NS = "booksapp"
FAILURE_RATE = 0.3
POSTS = 150
GETS = 1000


@dataclass(frozen=True)
class Mesh:
    home: Path
    ingress: str  # host:port


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    home = tmp_path_factory.mktemp("resilience-mesh")
    up = meshctl(home, "-o", "json", "up", "--subnet", SUBNET, "--rps", "0", "--failure-rate", f"{FAILURE_RATE}",
                 "--latency-ms", "1", timeout=UP_TIMEOUT_S + 30)  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        yield Mesh(home, urlsplit(json.loads(up.stdout)["urls"]["ingress"]).netloc)
    finally:
        meshctl(home, "down", timeout=120)


def send(mesh: Mesh, method: str, path: str, count: int) -> list[tuple[int, str]]:
    """`count` requests on one keep-alive connection: (status, mesh-proxy-error or "") of each."""
    host, port = mesh.ingress.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"title": "A test book", "author_id": 1, "pages": 100}) if method == "POST" else None
    headers = {"Content-Type": "application/json"} if body else {}
    answers = []
    try:
        for _ in range(count):
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.getheader("mesh-proxy-error") or ""))
    finally:
        connection.close()
    return answers


def apply(mesh: Mesh, tmp_path: Path, *documents: dict[str, Any]) -> None:
    path = tmp_path / "resources.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    done = meshctl(mesh.home, "apply", "-f", str(path))
    assert done.returncode == 0, done.stderr


def test_retries_and_an_abort_fault_applied_to_the_running_mesh(mesh: Mesh, tmp_path: Path) -> None:
    profile = profile_document("books", NS)
    for route in profile["spec"]["routes"]:
        if route["name"] == "POST /books":
            route["isRetryable"] = True
    fault = {"apiVersion": "meshctl.io/v1alpha1", "kind": "FaultInjection",
             "metadata": {"name": "webapp-home", "namespace": NS},
             "spec": {"service": "webapp", "routes": ["GET /"], "abort": {"percent": 10}}}  # fmt: skip
    apply(mesh, tmp_path, profile, fault)
    # Both arrive with one snapshot: once the ingress injects faults, webapp's proxy has the profile too.
    eventually(lambda: any(e == "fault injected" for _, e in send(mesh, "GET", "/", 20)), 20.0, "the fault applied")
    time.sleep(1.0)
    answers = send(mesh, "GET", "/", GETS)
    aborted = sum(1 for status, reason in answers if (status, reason) == (503, "fault injected"))
    assert sum(1 for status, _ in answers if status != 200) == aborted
    assert 0.07 <= aborted / GETS <= 0.13, aborted  # 10 % ± 3: over 3 standard deviations at 1,000
    posts = send(mesh, "POST", "/books", POSTS)
    success = sum(1 for status, _ in posts if status < 500) / POSTS
    assert success >= 0.85, success  # books fails 30 %; webapp's proxy retries within the budget

    def retried() -> dict[str, Any] | None:
        done = meshctl(mesh.home, "-n", NS, "routes", "deploy/webapp", "--to", "svc/books", "-o", "json",
                       "--window", "1m")  # fmt: skip
        assert done.returncode == 0, done.stderr
        rows = {row["route"]: row for row in json.loads(done.stdout)["routes"]}
        row: dict[str, Any] = rows["POST /books"]
        return row if row["requests"] >= POSTS and row["actual"]["requests"] > row["requests"] else None

    row = eventually(retried, 40.0, "retries in `meshctl routes`", every_s=2.0)
    assert row["actual"]["success_rate"] < row["success_rate"]  # each attempt vs what webapp got
