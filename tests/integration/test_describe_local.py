"""`meshctl get`, `delete` and `describe` end to end on a real local mesh: a fault applied, seen by a client,
by `get` and by `describe` (with the file it comes from), deleted, and gone for the client too; then one
books replica broken, ejected by its clients' circuit breakers, and the ejection shown by `describe`.

One mesh for the module, on a free loopback /16, traffic generator off.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
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
FAULT = {"apiVersion": "meshctl.io/v1alpha1", "kind": "FaultInjection",
         "metadata": {"name": "webapp-home", "namespace": NS},
         "spec": {"service": "webapp", "routes": ["GET /"], "abort": {"percent": 100, "httpStatus": 503}}}  # fmt: skip


@dataclass(frozen=True)
class Mesh:
    home: Path
    ingress: str  # host:port


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    home = tmp_path_factory.mktemp("describe-mesh")
    up = meshctl(home, "-o", "json", "up", "--subnet", SUBNET, "--rps", "0", "--failure-rate", "0",
                 timeout=UP_TIMEOUT_S + 30)  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        yield Mesh(home, urlsplit(json.loads(up.stdout)["urls"]["ingress"]).netloc)
    finally:
        meshctl(home, "down", timeout=120)


def home_page(mesh: Mesh, count: int) -> list[tuple[int, str]]:
    """`count` GET / through the ingress on one connection: (status, mesh-proxy-error or "") of each."""
    host, port = mesh.ingress.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    answers = []
    try:
        for _ in range(count):
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.getheader("mesh-proxy-error") or ""))
    finally:
        connection.close()
    return answers


def describe(mesh: Mesh, target: str, *flags: str) -> dict[str, Any]:
    done = meshctl(mesh.home, "describe", target, "-n", NS, "-o", "json", *flags)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def findings(document: dict[str, Any], aspect: str) -> list[dict[str, Any]]:
    return [f for view in document["policies"] for f in view["findings"] if f["aspect"] == aspect]


def test_a_fault_applied_seen_deleted_and_gone(mesh: Mesh, tmp_path: Path) -> None:
    path = tmp_path / "fault.yaml"
    path.write_text(yaml.safe_dump(FAULT))
    assert meshctl(mesh.home, "apply", "-f", str(path)).returncode == 0
    eventually(lambda: all(a == (503, "fault injected") for a in home_page(mesh, 10)), 20.0, "the fault applied")

    listed = meshctl(mesh.home, "get", "fi", "-n", NS)
    assert listed.returncode == 0 and "webapp-home" in listed.stdout and "abort 100% (503)" in listed.stdout
    (fault,) = findings(describe(mesh, "deploy/webapp", "--no-live"), "fault")
    assert fault["subject"] == "GET /" and fault["from"]["name"] == "webapp-home"
    assert fault["from"]["file"].endswith("config/faultinjection-booksapp-webapp-home.yaml")
    text = meshctl(mesh.home, "describe", "webapp", "-n", NS, "--no-live").stdout
    assert "FaultInjection/webapp-home" in text and "abort 100% with 503" in text

    deleted = meshctl(mesh.home, "delete", "-f", str(path))
    assert (deleted.returncode, deleted.stdout) == (0, "faultinjection/webapp-home deleted\n"), deleted.stderr
    eventually(lambda: all(a == (200, "") for a in home_page(mesh, 10)), 20.0, "the fault gone")
    assert findings(describe(mesh, "deploy/webapp", "--no-live"), "fault") == []
    listed = meshctl(mesh.home, "get", "fi", "-n", NS)
    assert (listed.returncode, listed.stdout) == (0, "") and "No faultinjections found" in listed.stderr

    again = meshctl(mesh.home, "delete", "-f", str(path))
    assert again.returncode == 1 and "faultinjection/webapp-home not found in namespace booksapp" in again.stderr


def _pid(mesh: Mesh, pod: str, role: str) -> int:
    status = json.loads(meshctl(mesh.home, "status", "-o", "json").stdout)
    (component,) = [c for c in status["components"] if c["pod"] == pod]
    return int(next(p["pid"] for p in component["processes"] if p["role"] == role))


def test_a_broken_replica_is_ejected_and_describe_shows_it(mesh: Mesh, tmp_path: Path) -> None:
    profile = profile_document("books", NS)
    profile["spec"]["failureAccrual"] = {"consecutiveFailures": 2, "minPenalty": "1m", "maxPenalty": "2m"}
    path = tmp_path / "books-profile.yaml"
    path.write_text(yaml.safe_dump(profile))
    assert meshctl(mesh.home, "apply", "-f", str(path)).returncode == 0
    (accrual,) = findings(describe(mesh, "svc/books", "--no-live"), "failure accrual")
    assert accrual["from"]["kind"] == "ServiceProfile" and accrual["detail"]["consecutiveFailures"] == 2

    # The profile reaches webapp's proxies with the next snapshot; only then do their breakers exist.
    def has_breakers() -> bool:
        home_page(mesh, 4)
        return any(b["client"].startswith("webapp") for b in describe(mesh, "deploy/books")["live"]["circuitBreakers"])

    eventually(has_breakers, 20.0, "webapp's breakers for books", every_s=1.0)
    os.kill(_pid(mesh, "books-1", "app"), signal.SIGKILL)  # its proxy stays: requests to it now fail

    def ejected() -> list[dict[str, Any]] | None:
        answers = home_page(mesh, 20)
        assert all(status == 200 for status, _ in answers), answers  # retried on books-0, never failed
        live = describe(mesh, "deploy/books")["live"]
        found = [(b["client"], e) for b in live["circuitBreakers"] for e in b["endpoints"] if e["state"] == "ejected"]
        return [e for _, e in found] if found else None

    verdicts = eventually(ejected, 30.0, "books-1 ejected", every_s=1.0)
    assert {v["pod"] for v in verdicts} == {"books-1"}
    assert all(0 < v["ejectedForSeconds"] <= 60 for v in verdicts)
    text = meshctl(mesh.home, "describe", "deploy/books", "-n", NS)
    assert text.returncode == 0, text.stderr
    rows = [cells for cells in map(str.split, text.stdout.splitlines()) if cells[3:4] == ["ejected"]]
    assert rows and all(row[2] == "books-1" for row in rows), text.stdout
