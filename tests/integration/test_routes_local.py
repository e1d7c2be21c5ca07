"""`meshctl routes` and `meshctl stat` against a real local mesh, checked against what a client observed.

The mesh runs in its own MESHCTL_HOME on a free loopback /16 with the traffic generator off (`--rps 0`), so
the only requests are the ones this module sends through the ingress: a fast route (GET /), a slow one
(GET /authors/{id}: the authors service sleeps LATENCY_MS x U(0.5, 1.5)) and one failing at a known rate
(POST /books: books answers 500 for FAILURE_RATE of them).

Tolerances:
- Counts are exact: the window covers all the traffic and the queries take each counter's change over
  the window (not `increase()`, which extrapolates), so `requests` equals what was sent, the success rate
  equals the client's share of non-5xx answers, and RPS equals requests / the span of data the window
  covers (`rate_span_s`: the mesh is younger than the window, so that is less than the window; stat
  divides by the window), to the 4 decimals of the JSON.
- Latency percentiles come from histogram buckets (bounds in meshctl.metrics.histogram: 1, 2, 3, 4, 5,
  10, 20, 30, 40, 50, 100, 200, 300, 400, 500 ms ...). The proxy times each request from inside the
  client's round trip, so its k-th smallest latency lies in [c_k - SLACK_MS, c_k], where c_k is the
  client's k-th smallest (k = ceil(q * N)) and SLACK_MS bounds the time spent outside the measuring proxy
  (client, ingress, one mTLS hop, on loopback). The reported quantile is interpolated inside the bucket
  holding that order statistic, so it must lie between the lower bound of the bucket of c_k - SLACK_MS
  and the upper bound of the bucket of c_k: one bucket of error, plus the slack on the low side only.
"""

from __future__ import annotations

import http.client
import json
import math
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from meshctl.metrics.histogram import BOUNDS_MS
from meshctl.observe.quantiles import bucket_of
from tests.integration.local_mesh import UP_TIMEOUT_S, free_subnet, meshctl, subnet_host

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus"),
]

SUBNET = free_subnet()
FAILURE_RATE = 0.3
LATENCY_MS = 150.0
WINDOW = "2m"
WINDOW_S = 120
# Time outside the measuring proxy. On loopback it is a few ms, but on a loaded two-core CI machine
# (the suite runs two workers beside the mesh and Prometheus) a p95 or p99 request spends up to ~100 ms
# waiting for a CPU there: a 50 ms slack failed about one full run in three with the reported quantile
# one bucket low, never high.
SLACK_MS = 150.0
CLIENTS = 4
# route name -> (method, path pattern, body, requests); each request uses the next id 1..10.
MIX: dict[str, tuple[str, str, dict[str, Any] | None, int]] = {
    "GET /": ("GET", "/", None, 60),
    "GET /authors/{id}": ("GET", "/authors/{id}", None, 40),
    "POST /books": ("POST", "/books", {"title": "A test book", "author_id": "{id}", "pages": 100}, 60),
}
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


@dataclass
class Observed:
    """What the client saw per route: (status, latency in ms) of every request."""

    answers: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: {route: [] for route in MIX})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, route: str, status: int, latency_ms: float) -> None:
        with self.lock:
            self.answers[route].append((status, latency_ms))


@dataclass(frozen=True)
class Mesh:
    home: Path
    ingress: str  # host:port
    observed: Observed


def _drive(ingress: str, jobs: list[tuple[str, int]], observed: Observed) -> None:
    """One client: a keep-alive connection, requests sent one after the other."""
    host, port = ingress.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for route, number in jobs:
            method, pattern, body, _ = MIX[route]
            ident = str(number % 10 + 1)
            payload = json.dumps({k: int(ident) if v == "{id}" else v for k, v in body.items()}) if body else None
            headers = {"Content-Type": "application/json"} if payload else {}
            started = time.perf_counter()
            connection.request(method, pattern.replace("{id}", ident), body=payload, headers=headers)
            response = connection.getresponse()
            response.read()
            observed.add(route, response.status, (time.perf_counter() - started) * 1000.0)
    finally:
        connection.close()


def _send_mix(ingress: str) -> Observed:
    observed = Observed()
    jobs = [(route, n) for route, (_, _, _, count) in MIX.items() for n in range(count)]
    threads = [
        threading.Thread(target=_drive, args=(ingress, jobs[i::CLIENTS], observed), name=f"client-{i}")
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "the test clients did not finish within 120 s"
    sent = {route: len(answers) for route, answers in observed.answers.items()}
    assert sent == {route: spec[3] for route, spec in MIX.items()}, sent
    return observed


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    home = tmp_path_factory.mktemp("routes-mesh")
    up = meshctl(
        home, "-o", "json", "up", "--subnet", SUBNET, "--rps", "0", "--failure-rate", f"{FAILURE_RATE}",
        "--latency-ms", f"{LATENCY_MS:g}", timeout=UP_TIMEOUT_S + 30,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        ingress = urlsplit(json.loads(up.stdout)["urls"]["ingress"]).netloc
        observed = _send_mix(ingress)
        yield Mesh(home, ingress, observed)
    finally:
        meshctl(home, "down", timeout=120)


def _json(mesh: Mesh, *args: str) -> dict[str, Any]:
    done = meshctl(mesh.home, "-n", "booksapp", *args, "-o", "json", "--window", WINDOW)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def _routes_when_scraped(mesh: Mesh, *args: str) -> dict[str, dict[str, Any]]:
    """The routes once Prometheus has scraped every answer the client got (bounded: 20 tries, ~40 s)."""
    want = {route: len(answers) for route, answers in mesh.observed.answers.items()}
    got: dict[str, int] = {}
    rows: dict[str, dict[str, Any]] = {}
    for _ in range(20):
        document = _json(mesh, *args)
        assert 0 < document["rate_span_s"] <= WINDOW_S
        rows = {row["route"]: {**row, "span_s": document["rate_span_s"]} for row in document["routes"]}
        got = {route: rows[route]["requests"] if route in rows else 0 for route in want}
        if got == want:
            return rows
        time.sleep(2.0)
    pytest.fail(f"Prometheus never showed the traffic sent: {got} instead of {want}")


def _expected_bounds(client_ms: list[float], q: float) -> tuple[float, float]:
    """Where the reported quantile may lie (module docstring): a bucket, widened by the slack below."""
    ordered = sorted(client_ms)
    c_k = ordered[math.ceil(q * len(ordered)) - 1]
    low, _ = bucket_of(max(c_k - SLACK_MS, 0.0), BOUNDS_MS)
    _, high = bucket_of(c_k, BOUNDS_MS)
    return low, high


def _assert_agrees(reported: dict[str, Any], answers: list[tuple[int, float]], what: str) -> None:
    sent = len(answers)
    successes = sum(1 for status, _ in answers if status < 500)
    assert reported["requests"] == sent, what
    assert reported["success_rate"] == pytest.approx(successes / sent, abs=1e-6), what
    assert reported["rps"] == pytest.approx(sent / reported.get("span_s", WINDOW_S), abs=1e-4), what
    latencies = [ms for _, ms in answers]
    for name, q in QUANTILES.items():
        low, high = _expected_bounds(latencies, q)
        value = reported["latency_ms"][name]
        assert value is not None and low <= value <= high, f"{what} {name}: {value} not in [{low}, {high}]"


def test_routes_agree_with_the_client(mesh: Mesh) -> None:
    rows = _routes_when_scraped(mesh, "routes", "deploy/webapp")
    for route, answers in mesh.observed.answers.items():
        _assert_agrees(rows[route], answers, f"webapp {route}")
        assert rows[route]["in_profile"] is True
    # The failing route fails at about its configured rate (60 draws: 4 standard deviations).
    failing = rows["POST /books"]["success_rate"]
    assert abs((1 - failing) - FAILURE_RATE) < 4 * math.sqrt(FAILURE_RATE * (1 - FAILURE_RATE) / 60)
    assert rows["GET /"]["success_rate"] == 1.0 and rows["GET /authors/{id}"]["success_rate"] == 1.0
    # The slow route is slow: the authors service sleeps at least LATENCY_MS / 2 on every request.
    assert rows["GET /authors/{id}"]["latency_ms"]["p50"] >= LATENCY_MS / 2
    # Routes of the profile without traffic are listed too, and [DEFAULT] is last with nothing in it.
    assert rows["POST /books/{id}/rate"]["requests"] == 0 and rows["POST /books/{id}/rate"]["rps"] == 0
    assert list(rows)[-1] == "[DEFAULT]" and rows["[DEFAULT]"]["success_rate"] is None


def test_outbound_view_from_the_ingress(mesh: Mesh) -> None:
    rows = _routes_when_scraped(mesh, "routes", "deploy/ingress", "--to", "svc/webapp")
    for route, answers in mesh.observed.answers.items():
        _assert_agrees(rows[route], answers, f"ingress -> webapp {route}")
        assert rows[route]["actual"]["requests"] >= rows[route]["requests"]  # attempts, retries included


def test_stat_agrees_with_the_client(mesh: Mesh) -> None:
    _routes_when_scraped(mesh, "routes", "deploy/webapp")
    (row,) = _json(mesh, "stat", "deploy/webapp")["workloads"]
    everything = [answer for answers in mesh.observed.answers.values() for answer in answers]
    _assert_agrees(row, everything, "stat deploy/webapp")
    assert (row["meshed"], row["instances"]) == (2, 2)
    assert row["in_flight"] == 0
    assert isinstance(row["tcp_connections"], int) and row["tcp_connections"] >= 0


def test_query_budget(mesh: Mesh) -> None:
    for args, budget in ((("routes", "deploy/webapp"), 3), (("stat", "deploy"), 3)):
        done = meshctl(mesh.home, "--debug", "-n", "booksapp", *args, "-o", "json")
        assert done.returncode == 0, done.stderr
        queries = [line for line in done.stderr.splitlines() if line.startswith("# promql ")]
        assert len(queries) == budget, queries


def test_short_window_and_absent_prometheus_are_clear_errors(mesh: Mesh) -> None:
    done = meshctl(mesh.home, "-n", "booksapp", "routes", "deploy/webapp", "--window", "5s")
    assert done.returncode == 2
    assert "shorter than two scrape intervals" in done.stderr and "--window 10s" in done.stderr
    done = meshctl(
        mesh.home, "-n", "booksapp", "stat", "deploy", "--prometheus-url", f"http://{subnet_host(SUBNET, '0.250')}:9"
    )
    assert done.returncode == 3, done.stderr
    assert f"cannot reach Prometheus at http://{subnet_host(SUBNET, '0.250')}:9" in done.stderr
    assert "--prometheus-url" in done.stderr and "meshctl check" in done.stderr
