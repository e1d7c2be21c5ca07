"""Egress through real processes: webapp's outbound proxy (a subprocess of a mesh with its control plane)
reaches an app outside the mesh only as the Egress in its namespace allows (host and port), with the
Egress's timeout and retries and with metrics under the host's authority; every other host stays
refused with 503 "unknown service" and a body that names the fix.

Measured: an external route failing 30 % (seeded) is answered with success ≥ 90 % thanks to retries, the
external app receives the retries (counted in the actual metrics), a slow answer is cut at the timeout.
"""

from __future__ import annotations

import http.client
import http.server
import json
import random
import threading
import time
from collections.abc import Iterator

import pytest

from tests.integration.local_mesh import free_subnet
from tests.integration.test_proxy_h1 import counter
from tests.reliability.procmesh import NS, ProcMesh, http_get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

REQUESTS = 300
FAILING = 0.3
TIMEOUT_S = 0.5


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the proxy cutting a slow answer at its timeout resets the connection: expected here


class ExternalApp:
    """An HTTP/1.1 server outside the mesh: /flaky fails 30 % (seeded), /slow answers after 1.5 s."""

    def __init__(self) -> None:
        self.received = 0
        self.hosts: set[str] = set()
        rng = random.Random(3)
        lock = threading.Lock()
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                with lock:
                    app.received += 1
                    app.hosts.add(self.headers.get("host", ""))
                    fail = self.path.startswith("/flaky") and rng.random() < FAILING
                if self.path.startswith("/slow"):
                    time.sleep(1.5)
                body = b"outside " + self.path.encode()
                self.send_response(500 if fail else 200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def external() -> Iterator[ExternalApp]:
    app = ExternalApp()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, external: ExternalApp) -> Iterator[ProcMesh]:
    mesh = ProcMesh(tmp_path_factory.mktemp("egress"), free_subnet(), books=1)
    egress = {"apiVersion": "meshctl.io/v1alpha1", "kind": "Egress", "metadata": {"name": "outside", "namespace": NS},
              "spec": {"hosts": ["127.0.0.1", "*.example.invalid"], "ports": [{"number": external.port}],
                       "timeout": f"{int(TIMEOUT_S * 1000)}ms", "isRetryable": True}}  # fmt: skip
    (mesh.root / "config").mkdir(parents=True)
    (mesh.root / "config" / "egress.yaml").write_text(json.dumps(egress))
    try:
        yield mesh.start()
    finally:
        mesh.stop()


def get(mesh: ProcMesh, authority: str, path: str) -> tuple[int, dict[str, str], str]:
    host, _, port = mesh.pods["webapp-0"].outbound.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers={"Host": authority})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        conn.close()


def test_an_admitted_host_gets_retries_timeouts_and_metrics(mesh: ProcMesh, external: ExternalApp) -> None:
    authority = f"127.0.0.1:{external.port}"
    ok = sum(get(mesh, authority, f"/flaky/{n}")[0] == 200 for n in range(REQUESTS))
    print(f"\negress: {ok}/{REQUESTS} succeeded, the app received {external.received} (failing {FAILING:.0%})")
    assert ok / REQUESTS >= 0.9 and external.received > REQUESTS
    assert external.hosts == {authority}  # the request is forwarded as the app wrote it
    _, metrics = http_get(mesh.pods["webapp-0"].admin, "/metrics")
    labels = {"authority": authority, "direction": "outbound", "tls": "false", "route": "egress/outside"}
    assert counter(metrics, "route_response_total", **labels) == REQUESTS
    assert counter(metrics, "route_actual_response_total", **labels) == external.received
    started = time.monotonic()
    status, headers, _ = get(mesh, authority, "/slow")
    assert status == 504 and headers["mesh-proxy-error"] == "response timeout"
    assert time.monotonic() - started < 1.4  # the Egress's 500 ms, not the app's 1.5 s


def test_everything_else_stays_refused_with_the_fix(mesh: ProcMesh, external: ExternalApp) -> None:
    before = external.received
    for authority, fix in [
        ("api.example.com", "apply an Egress for api.example.com:80"),
        (f"127.0.0.1:{external.port + 1}", f"apply an Egress for 127.0.0.1:{external.port + 1}"),
        ("nope:7000", "no service nope in namespace booksapp on port 7000: check the name"),
    ]:
        status, headers, body = get(mesh, authority, "/x")
        assert (status, headers["mesh-proxy-error"], body) == (503, "unknown service", f"unknown service: {fix}\n")
    # A wildcard host is admitted (and forwarded): this one cannot be resolved, so it fails to connect.
    status, headers, _ = get(mesh, f"api.example.invalid:{external.port}", "/x")
    assert status == 502 and headers["mesh-proxy-error"] == "connect failed"
    assert external.received == before
