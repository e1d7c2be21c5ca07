"""The local platform end to end: `meshctl up`, status, traffic through the ingress, Prometheus, `down`.

Each test uses its own MESHCTL_HOME and its own loopback subnet, so tests can run in parallel and never
touch a developer's mesh (127.77.0.0/16, ~/.meshctl).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.local_mesh import (
    SCRAPE_WAIT_S,
    UP_TIMEOUT_S,
    alive,
    eventually,
    free_subnet,
    http_request,
    meshctl,
    processes_mentioning,
    prometheus_query,
    status_json,
    subnet_host,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]



@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "meshctl-home"
    yield path
    if (path / "mesh.json").exists():  # a failed test must not leave a mesh running
        meshctl(path, "down")


def test_demo_mesh_lifecycle(home: Path) -> None:
    subnet = free_subnet()
    started = time.monotonic()
    up = meshctl(home, "up", "--subnet", subnet, "--rps", "5", "--timeout", "150", timeout=UP_TIMEOUT_S)
    assert up.returncode == 0, up.stdout + up.stderr
    ingress = f"http://{subnet_host(subnet, '0.4')}:8080"
    prom = f"http://{subnet_host(subnet, '0.3')}:9090"
    assert ingress in up.stdout and prom in up.stdout and str(home) in up.stdout
    assert "control plane ready" in up.stderr and "proxy books-0 ready" in up.stderr
    sys.stderr.write(f"meshctl up took {time.monotonic() - started:.1f}s\n")

    # Status: every component running, with its addresses; exit 0.
    def all_running() -> tuple[int, dict[str, Any]] | None:
        code, status = status_json(home)
        return (code, status) if code == 0 else None

    code, status = eventually(all_running, 60, "meshctl status: all running")
    assert code == 0 and status["all_running"] is True
    kinds = {c["kind"] for c in status["components"]}
    assert kinds == {"control-plane", "workload", "ingress", "prometheus", "traffic"}
    workloads = [c for c in status["components"] if c["kind"] == "workload"]
    assert {c["deployment"] for c in workloads} == {"webapp", "books", "authors", "ratings"}
    assert max(sum(1 for c in workloads if c["deployment"] == d) for d in ("webapp", "books")) >= 2
    for c in workloads:
        assert c["addresses"]["admin"].startswith(subnet_host(subnet, "")[:-1]) and c["ready"] is True
        assert [p["role"] for p in c["processes"]] == ["app", "proxy"]
        assert all(isinstance(p["pid"], int) for p in c["processes"])
    assert status["urls"] == {"ingress": ingress, "prometheus": prom}
    pids = [p["pid"] for c in status["components"] for p in c["processes"]]

    table = meshctl(home, "status")
    assert table.returncode == 0 and "books-1" in table.stdout and "running" in table.stdout

    # Requests through the ingress reach the whole chain: webapp → books → authors, books → ratings (gRPC).
    code_index, index = http_request(f"{ingress}/")
    assert code_index == 200 and "Pride and Prejudice" in index
    code_book, book = http_request(f"{ingress}/books/1")
    assert code_book == 200 and "Jane Austen" in book and "stars from" in book
    code_author, author = http_request(f"{ingress}/authors/3")
    assert code_author == 200 and "Frankenstein" in author
    posts = [http_request(f"{ingress}/books", "POST", "title=Test&author_id=1&pages=5")[0] for _ in range(8)]
    assert set(posts) <= {303, 500}, posts

    # Prometheus scrapes every proxy (labels from the scrape config) and the control plane.
    proxy_pods = {c["pod"] for c in status["components"] if c["kind"] in ("workload", "ingress")}

    def scraped_pods() -> set[str] | None:
        series = prometheus_query(prom, "sum by (namespace, pod, deployment) (request_total)")
        pods = {s["metric"]["pod"] for s in series if s["metric"].get("deployment")}
        return pods if pods >= proxy_pods else None

    eventually(scraped_pods, SCRAPE_WAIT_S, "request_total of every proxy in Prometheus", every_s=2.0)

    def route_pods() -> set[str] | None:
        series = prometheus_query(prom, 'sum by (pod) (route_request_total{rt_route!="[DEFAULT]"})')
        pods = {s["metric"]["pod"] for s in series}
        return pods if pods >= proxy_pods else None

    eventually(route_pods, SCRAPE_WAIT_S, "named route series of every proxy in Prometheus", every_s=2.0)

    def routes_seen() -> set[str] | None:
        series = prometheus_query(prom, 'sum by (deployment, rt_route) (route_request_total{direction="inbound"})')
        seen = {f"{s['metric'].get('deployment')} {s['metric'].get('rt_route')}" for s in series}
        wanted = {"books POST /books", "authors GET /authors/{id}", "webapp GET /", "ratings GetRating"}
        return seen if seen >= wanted else None

    eventually(routes_seen, SCRAPE_WAIT_S, "named routes in Prometheus", every_s=2.0)
    control_up = prometheus_query(prom, 'up{component="control-plane"}')
    assert [s["value"][1] for s in control_up] == ["1"]

    # A second `up` in the same home is refused.
    again = meshctl(home, "up", "--subnet", subnet)
    assert again.returncode == 5, again.stderr
    assert "a mesh is already running" in again.stderr and "meshctl down" in again.stderr

    # Down stops everything and keeps the files.
    down = meshctl(home, "down", timeout=60)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if alive(pid)] == []
    assert processes_mentioning(str(home)) == []
    assert (home / "identity" / "ca.pem").exists() and (home / "logs" / "control.log").exists()
    assert any((home / "config").glob("serviceprofile-booksapp-*.yaml"))
    assert meshctl(home, "status").returncode == 3
    again_down = meshctl(home, "down")
    assert again_down.returncode == 0 and "No mesh is running" in again_down.stdout


def test_crashed_mesh_is_detected_and_replaced(home: Path) -> None:
    subnet = free_subnet()
    first = meshctl(home, "up", "--no-demo", "--subnet", subnet)
    assert first.returncode == 0, first.stderr
    _, status = status_json(home)
    pids = [p["pid"] for c in status["components"] for p in c["processes"]]
    for pid in pids:
        os.kill(pid, 9)
    eventually(lambda: all(not alive(pid) for pid in pids), 10, "processes killed", every_s=0.1)
    code, status = status_json(home)
    assert code == 1 and status["all_running"] is False
    assert {c["status"] for c in status["components"]} == {"down"}

    second = meshctl(home, "up", "--no-demo", "--subnet", subnet)
    assert second.returncode == 0, second.stderr
    assert "stopped without `meshctl down`" in second.stderr
    assert status_json(home)[0] == 0
    assert meshctl(home, "down").returncode == 0


def test_a_taken_port_is_named(home: Path) -> None:
    subnet = free_subnet()
    with socket.socket() as sock:
        sock.bind((subnet_host(subnet, "0.2"), 8086))
        sock.listen()
        done = meshctl(home, "up", "--no-demo", "--subnet", subnet)
    assert done.returncode == 5
    assert f"{subnet_host(subnet, '0.2')}:8086 (control plane gRPC API) is already in use" in done.stderr
    assert not (home / "mesh.json").exists()


def test_missing_prometheus_says_how_to_install_it(home: Path, tmp_path: Path) -> None:
    env_home = home
    done = subprocess.run(
        [sys.executable, "-m", "meshctl", "up", "--no-demo", "--subnet", free_subnet()],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MESHCTL_HOME": str(env_home), "MESHCTL_PROMETHEUS": str(tmp_path / "none")},
        check=False,
    )
    assert done.returncode == 1
    assert "MESHCTL_PROMETHEUS" in done.stderr
    assert not (env_home / "mesh.json").exists()
