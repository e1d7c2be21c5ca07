"""gRPC through two sidecars with mTLS between them: grpcio client -> outbound -> inbound -> grpcio server.

The proxies run on the real runtime (router, balancer, TLS contexts, metrics, rescue) fed a static
snapshot and certificates from the mesh CA. Checked: every call shape with trailers and statuses
intact, metrics equal to the calls made, a backend killed mid-stream, deadlines from grpc-timeout and
from a route timeout, unknown services, a peer with the wrong identity, an HTTP/1.1 app, drain.
"""

from __future__ import annotations

import asyncio
import http.server
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, ResponseReceived, StreamEnded, StreamReset, TrailersReceived

from meshctl.aio import spawn
from meshctl.proxy.h2.server import drain_h2
from tests.integration.test_proxy_grpc_support import AUTHORITY, BACKEND_SCRIPT, NS, SERVICE, Backend, Mesh, _same

pytestmark = pytest.mark.integration

Header = tuple[bytes, bytes]


@pytest.fixture
def backend() -> Iterator[Backend]:
    server = Backend()
    yield server
    server.stop()


@pytest.fixture
def mesh(backend: Backend) -> Iterator[Mesh]:
    running = Mesh(backend.port)
    yield running
    running.stop()


def h2_call(port: int, headers: list[Header], body: bytes = b"", timeout: float = 10.0) -> dict[str, Any]:
    """One request on a fresh HTTP/2 connection; returns the response head, body and trailers."""
    conn = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(1, headers, end_stream=not body)
    if body:
        conn.send_data(1, body, end_stream=True)
    result: dict[str, Any] = {"headers": [], "body": b"", "trailers": [], "reset": None}
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(conn.data_to_send())
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, ResponseReceived):
                    result["headers"] = ev.headers
                elif isinstance(ev, DataReceived):
                    result["body"] += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, TrailersReceived):
                    result["trailers"] = ev.headers
                elif isinstance(ev, StreamReset):
                    result["reset"] = ev.error_code
                if isinstance(ev, StreamEnded | StreamReset):
                    return result
            sock.sendall(conn.data_to_send())
    raise AssertionError(f"no complete response within {timeout} s: {result}")


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def grpc_headers(method: str, **extra: bytes) -> list[Header]:
    return [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", f"/{SERVICE}/{method}".encode()),
        (b":authority", AUTHORITY.encode()), (b"content-type", b"application/grpc"), (b"te", b"trailers"),
        *((k.replace("_", "-").encode(), v) for k, v in extra.items()),
    ]  # fmt: skip


def test_every_call_shape_passes_with_trailers_statuses_and_metrics(mesh: Mesh) -> None:
    with mesh.channel() as ch:
        reply, call = ch.unary_unary(f"/{SERVICE}/Unary", _same, _same).with_call(b"hello", timeout=10)
        assert reply == b"olleh" and ("x-trailer", "t1") in call.trailing_metadata()
        assert list(ch.unary_stream(f"/{SERVICE}/Count", _same, _same)(b"100", timeout=10)) == [
            b"%d" % n for n in range(100)
        ]
        total = ch.stream_unary(f"/{SERVICE}/Sum", _same, _same)(iter([b"%d" % n for n in range(50)]), timeout=10)
        assert total == b"1225"
        echoed = list(ch.stream_stream(f"/{SERVICE}/Echo", _same, _same)(iter([b"a", b"b"]), timeout=10))
        assert echoed == [b"echo:a", b"echo:b"]
        with pytest.raises(grpc.RpcError) as raised:
            ch.unary_unary(f"/{SERVICE}/Fail", _same, _same)(b"why", timeout=10)
        error: Any = raised.value
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and error.details() == "nope: why"
        unary = ch.unary_unary(f"/{SERVICE}/Unary", _same, _same)
        for n in range(50):
            assert unary(b"%d" % n, timeout=10) == (b"%d" % n)[::-1]
    expected = {(200, 0, False): 54, (200, 9, True): 1}
    for side in ("outbound", "inbound"):
        assert mesh.stats(side).requests == 55, side
        assert mesh.responses(side) == expected, side
    text = mesh.render("outbound")
    assert 'grpc_status="9"' in text and 'classification="failure"' in text
    # One connection per hop: app -> outbound (src), outbound -> inbound (dst, mTLS), inbound -> app.
    for side, peer, tls in (("outbound", "src", "false"), ("outbound", "dst", "true"), ("inbound", "src", "true"),
                            ("inbound", "dst", "false")):  # fmt: skip
        line = f'tcp_open_total{{direction="{side}",peer="{peer}",tls="{tls}"}} 1'
        assert re.search(f"^{re.escape(line)}$", mesh.render(side), re.M), line


def test_large_messages_cross_both_hops(mesh: Mesh) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: dozens of flow-control windows on each of three connections
    with mesh.channel() as ch:
        assert ch.unary_unary(f"/{SERVICE}/Unary", _same, _same)(big, timeout=20) == big[::-1]
        chunks = [bytes([n]) * 65536 for n in range(40)]
        echoed = list(ch.stream_stream(f"/{SERVICE}/Echo", _same, _same)(iter(chunks), timeout=20))
        assert echoed == [b"echo:" + c for c in chunks]


def test_grpc_timeout_is_forwarded_and_enforced_by_the_proxy(mesh: Mesh, backend: Backend) -> None:
    started = time.monotonic()
    # A raw HTTP/2 client: the deadline is the proxy's to enforce, not the client library's.
    result = h2_call(mesh.outbound_port, grpc_headers("Slow", grpc_timeout=b"300m"), grpc_frame(b""))
    elapsed = time.monotonic() - started
    head = dict(result["headers"])
    assert head[b":status"] == b"200" and head[b"grpc-status"] == b"4", result
    assert b"mesh-proxy-error" in head
    assert 0.25 <= elapsed < 2.0  # the backend would take 5 s: the proxy ended it
    assert backend.cancelled.wait(5)
    assert backend.timeouts and backend.timeouts[0] is not None and backend.timeouts[0] <= 0.3
    assert mesh.responses("outbound") == {(200, 4, True): 1}


def test_route_timeout_answers_deadline_exceeded(backend: Backend) -> None:
    profile = {"routes": [{"name": "slow", "condition": {"pathRegex": f"/{SERVICE}/Slow"}, "timeout": "200ms"}]}
    mesh = Mesh(backend.port, profile=profile)
    try:
        with mesh.channel() as ch, pytest.raises(grpc.RpcError) as raised:
            ch.unary_unary(f"/{SERVICE}/Slow", _same, _same)(b"", timeout=10)
        error: Any = raised.value
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert dict(error.trailing_metadata())["mesh-proxy-error"] == "response timeout"
        assert mesh.responses("outbound", "slow") == {(200, 4, True): 1}
    finally:
        mesh.stop()


def test_unknown_service_is_unavailable(mesh: Mesh) -> None:
    headers = [
        (k, b"nope.grpcapp.svc.cluster.local:7000" if k == b":authority" else v) for k, v in grpc_headers("Unary")
    ]
    result = h2_call(mesh.outbound_port, headers, grpc_frame(b"x"))
    head = dict(result["headers"])
    assert head[b":status"] == b"200" and head[b"grpc-status"] == b"14"
    assert head[b"mesh-proxy-error"] == b"unknown service"


def test_peer_with_another_identity_is_refused(backend: Backend) -> None:
    mesh = Mesh(backend.port, peer_identity=f"impostor.{NS}.serviceaccount.identity.meshctl.cluster.local")
    try:
        with mesh.channel() as ch, pytest.raises(grpc.RpcError) as raised:
            ch.unary_unary(f"/{SERVICE}/Unary", _same, _same)(b"x", timeout=10)
        error: Any = raised.value
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert dict(error.trailing_metadata())["mesh-proxy-error"] == "peer identity mismatch"
        assert mesh.stats("inbound").requests == 0
    finally:
        mesh.stop()




def test_backend_killed_mid_stream_is_unavailable_not_a_hang() -> None:
    proc = subprocess.Popen([sys.executable, "-c", BACKEND_SCRIPT], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        mesh = Mesh(int(proc.stdout.readline()))
        try:
            with mesh.channel() as ch:
                received = 0
                started = time.monotonic()
                with pytest.raises(grpc.RpcError) as raised:
                    for _ in ch.unary_stream(f"/{SERVICE}/Forever", _same, _same)(b"", timeout=30):
                        received += 1
                        if received == 20:
                            proc.kill()
                error: Any = raised.value
                assert error.code() == grpc.StatusCode.UNAVAILABLE
                assert "mesh-proxy-error" in dict(error.trailing_metadata())
                assert received >= 20 and time.monotonic() - started < 10
            assert mesh.responses("outbound") == {(200, 14, True): 1}
        finally:
            mesh.stop()
    finally:
        proc.kill()
        proc.wait(5)
        proc.stdout.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("content-length", "0") or 0))
        if self.headers.get("transfer-encoding") == "chunked":
            body = b""
            while (size := int(self.rfile.readline().strip(), 16)) > 0:
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        reply = b"%s %s host=%s body=%s" % (
            self.command.encode(),
            self.path.encode(),
            str(self.headers["host"]).encode(),
            body,
        )
        self.send_response(201)
        self.send_header("content-length", str(len(reply)))
        self.send_header("x-app", "h1")
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server API
        pass


def test_inbound_translates_to_an_http1_app() -> None:
    app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=app.serve_forever, daemon=True)
    thread.start()
    mesh = Mesh(app.server_address[1], app_protocol="http")
    try:
        headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/books?id=1"),
                   (b":authority", AUTHORITY.encode())]  # fmt: skip
        for body in (b"payload", b""):
            result = h2_call(mesh.outbound_port, headers, body)
            head = dict(result["headers"])
            assert head[b":status"] == b"201" and head[b"x-app"] == b"h1"
            assert result["body"] == b"POST /books?id=1 host=%s body=%s" % (AUTHORITY.encode(), body)
        assert mesh.responses("inbound") == {(201, None, False): 2}
    finally:
        mesh.stop()
        app.shutdown()
        app.server_close()
        thread.join(5)


def test_drain_lets_a_stream_in_flight_finish(mesh: Mesh) -> None:
    finished = threading.Event()

    async def drain_both() -> None:
        await asyncio.gather(drain_h2(mesh.outbound, 10.0), drain_h2(mesh.inbound, 10.0))
        finished.set()

    with mesh.channel() as ch:
        stream = ch.unary_stream(f"/{SERVICE}/Count", _same, _same)(b"3000", timeout=20)
        first = next(iter(stream))
        mesh.loop.call_soon_threadsafe(lambda: spawn(drain_both(), name="test-drain"))
        rest = list(stream)
        assert first == b"0" and len(rest) == 2999
        assert finished.wait(10)
        with pytest.raises(grpc.RpcError) as raised:  # the listeners are still open, but drained
            ch.unary_unary(f"/{SERVICE}/Unary", _same, _same)(b"x", timeout=5)
        error: Any = raised.value
        assert error.code() == grpc.StatusCode.UNAVAILABLE
