"""Known traffic through the local mesh: every hop counts exactly what the client sent, every proxy
presents the identity of its workload, chained to the mesh's trust anchor.

The traffic generator is off (`--rps 0`), so the only requests are the test's own: N pages of a book go
ingress → webapp → books (HTTP/1.1 over mTLS) → authors (HTTP/1.1) and ratings (gRPC over mTLS).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshctl.identity import workload_identity
from tests.integration.local_mesh import (
    UP_TIMEOUT_S,
    eventually,
    free_subnet,
    http_request,
    meshctl,
    status_json,
    subnet_host,
)

pytestmark = pytest.mark.integration

SUBNET = free_subnet()
INGRESS = f"http://{subnet_host(SUBNET, '0.4')}:8080"
PAGES = 24


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    home = tmp_path_factory.mktemp("traffic") / "meshctl-home"
    up = meshctl(home, "up", "--subnet", SUBNET, "--rps", "0", "--latency-ms", "5", "--failure-rate", "0",
                 timeout=UP_TIMEOUT_S)  # fmt: skip
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        code, status = eventually(lambda: (lambda s: s if s[0] == 0 else None)(status_json(home)), 60, "all running")
        yield home, status
    finally:
        meshctl(home, "down", timeout=60)


def scrape(admin: str) -> str:
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as response:
        text: str = response.read().decode()
        return text


def total(text: str, metric: str, **labels: str) -> float:
    """Sum of the samples of `metric` whose labels include `labels`."""
    found = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            found += float(line.rsplit(" ", 1)[1])
    return found


def by_deployment(status: dict[str, Any], metric: str, **labels: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for component in status["components"]:
        if component["kind"] in ("workload", "ingress"):
            name = component["deployment"] if component["kind"] == "workload" else "ingress"
            counts[name] = counts.get(name, 0.0) + total(scrape(component["addresses"]["admin"]), metric, **labels)
    return counts


def test_every_hop_counts_exactly_the_requests_sent(mesh: tuple[Path, dict[str, Any]]) -> None:
    _, status = mesh
    before_in = by_deployment(status, "request_total", direction="inbound")
    before_out = by_deployment(status, "request_total", direction="outbound")
    for _ in range(PAGES):
        code, page = http_request(f"{INGRESS}/books/1")
        assert code == 200 and "stars from" in page, page

    after_in = by_deployment(status, "request_total", direction="inbound")
    after_out = by_deployment(status, "request_total", direction="outbound")
    inbound = {k: v - before_in.get(k, 0.0) for k, v in after_in.items()}
    outbound = {k: v - before_out.get(k, 0.0) for k, v in after_out.items()}
    # One page: ingress → webapp (1), webapp → books (1), books → authors (1) and → ratings (1, gRPC).
    assert outbound == {"ingress": PAGES, "webapp": PAGES, "books": 2 * PAGES, "authors": 0, "ratings": 0}
    assert inbound == {"ingress": 0, "webapp": PAGES, "books": PAGES, "authors": PAGES, "ratings": PAGES}

    ok = by_deployment(status, "route_response_total", direction="inbound", classification="success")
    ratings_ok = by_deployment(status, "route_response_total", direction="inbound", rt_route="GetRating",
                               grpc_status="0")  # fmt: skip
    assert ratings_ok["ratings"] >= PAGES and ok["ratings"] >= PAGES
    tls_out = by_deployment(status, "request_total", direction="outbound", tls="true")
    assert tls_out["webapp"] >= PAGES and tls_out["books"] >= 2 * PAGES


@pytest.mark.parametrize("deployment", ["webapp", "books", "authors", "ratings"])
def test_each_proxy_presents_its_workload_identity(mesh: tuple[Path, dict[str, Any]], deployment: str) -> None:
    home, status = mesh
    anchors = home / "identity" / "ca.pem"
    pods = [c for c in status["components"] if c["kind"] == "workload" and c["deployment"] == deployment]
    assert pods
    for pod in pods:
        host = pod["addresses"]["admin"].rsplit(":", 1)[0]
        expected = workload_identity(deployment, "booksapp")
        # check_hostname verifies the certificate's DNS SAN; the chain must end at the mesh's own anchor.
        context = ssl.create_default_context(cafile=str(anchors))
        with (
            socket.create_connection((host, 4143), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=expected) as tls,
        ):
            peer = tls.getpeercert() or {}
            names = [pair[1] for pair in peer.get("subjectAltName", ()) if pair[0] == "DNS"]
            assert names == [expected]
        other = workload_identity("someone-else", "booksapp")
        with socket.create_connection((host, 4143), timeout=10) as raw, pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname=other)


def test_promtool_accepts_every_proxys_metrics(mesh: tuple[Path, dict[str, Any]]) -> None:
    """After real traffic (HTTP/1.1, gRPC, errors), each proxy's /metrics passes Prometheus' own linter."""
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool comes with Debian's prometheus package: run `bash .ci/setup`"
    _, status = mesh
    http_request(f"{INGRESS}/books/1")
    http_request(f"{INGRESS}/no/such/page")
    admins = [c["addresses"]["admin"] for c in status["components"] if c["kind"] in ("workload", "ingress")]
    assert len(admins) >= 7
    for admin in admins:
        text = scrape(admin)
        assert "route_response_latency_seconds_bucket{" in text
        done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{admin}: {done.stdout}{done.stderr}"


def test_tap_sees_every_request_once_with_its_response_and_end(mesh: tuple[Path, dict[str, Any]]) -> None:
    """`meshctl tap` on the running demo: N known requests through the ingress arrive as N req/rsp/end
    triples at webapp's inbound side, with the mesh identities of both ends."""
    home, _ = mesh
    env = {**os.environ, "MESHCTL_HOME": str(home)}
    for name in ("MESHCTL_SUBNET", "MESHCTL_PROMETHEUS_URL", "MESHCTL_PLATFORM"):
        env.pop(name, None)
    tap = subprocess.Popen(
        [sys.executable, "-m", "meshctl", "tap", "deploy/webapp", "-n", "booksapp", "--path", "/books/",
         "-o", "json", "--duration", "12s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        time.sleep(3.0)  # the stream opens; requests before it are not promised
        sent = [f"/books/{i}" for i in range(1, 11)]
        for path in sent:
            assert http_request(f"{INGRESS}{path}")[0] == 200
        out, err = tap.communicate(timeout=30)
    finally:
        if tap.poll() is None:
            tap.kill()
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    inbound = {(e["instance"], e["id"]): e for e in events if e["type"] == "req" and e["direction"] == "inbound"}
    assert sorted(e["path"] for e in inbound.values()) == sorted(sent), err
    for kind in ("rsp", "end"):
        ids = sorted(key for e in events if e["type"] == kind and (key := (e["instance"], e["id"])) in inbound)
        assert ids == sorted(inbound), f"{kind}: {ids} vs {sorted(inbound)}"
    for req in inbound.values():
        assert req["tls"] is True and req["method"] == "GET"
        assert req["source"]["identity"] == workload_identity("ingress", "booksapp")
        assert req["destination"]["identity"] == workload_identity("webapp", "booksapp")
    assert {e["status"] for e in events if e["type"] == "rsp" and (e["instance"], e["id"]) in inbound} == {200}
