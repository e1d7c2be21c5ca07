"""The control plane's own gRPC server, in process, against grpcio clients and raw TLS + HTTP/2 peers.

The control plane runs on an event loop in a thread with short keepalive intervals; the test thread is
the client: grpcio stubs, or an ssl socket with an ngh2 client session where the test needs a peer that
misbehaves (never acknowledges a PING).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import ngh2
import pytest
from cryptography import x509

from meshctl.api import mesh_pb2_grpc
from meshctl.control.config import load_control_config
from meshctl.control.grpc_server import ServerLimits
from meshctl.control.grpc_wire import MAX_MESSAGE
from meshctl.control.server import ControlPlane
from meshctl.identity import control_plane_identity
from tests.integration.test_control_plane import (
    Home,
    certify_request,
    channel,
    make_home,
    watch_request,
)

pytestmark = pytest.mark.integration
T = TypeVar("T")
LIMITS = ServerLimits(keepalive_s=0.5, ack_timeout_s=0.5)


class Plane:
    """A ControlPlane on its own loop thread."""

    def __init__(self, home: Home) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="control loop", daemon=True)
        self.thread.start()
        self.plane = ControlPlane(load_control_config(home.control_json), home.control_json, limits=LIMITS)
        self.run(self.plane.start())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.run(self.plane.stop(grace=1.0))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return make_home(tmp_path)


@pytest.fixture
def plane(home: Home) -> Iterator[Plane]:
    running = Plane(home)
    yield running
    running.close()


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def tls_socket(home: Home) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(home.anchors))
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", home.listen_port), timeout=5)
    return context.wrap_socket(raw, server_hostname=control_plane_identity())


def test_unknown_method_is_unimplemented(home: Home, plane: Plane) -> None:
    with channel(home) as ch, pytest.raises(grpc.RpcError) as caught:  # noqa: PT012
        forge = ch.unary_unary("/meshctl.control.v1.Identity/Forge", bytes, bytes)
        forge(b"", timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "/meshctl.control.v1.Identity/Forge" in (caught.value.details() or "")


def test_oversized_request_is_refused_and_the_connection_still_serves(home: Home, plane: Plane) -> None:
    request = certify_request()
    request.csr_der = b"x" * (MAX_MESSAGE + 1)
    with channel(home) as ch:
        stub = mesh_pb2_grpc.IdentityStub(ch)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Certify(request, timeout=10)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(MAX_MESSAGE) in (caught.value.details() or "")
        assert stub.Certify(certify_request(), timeout=10).leaf_der  # same channel, next call served


def test_keepalive_closes_a_peer_that_never_answers(home: Home, plane: Plane) -> None:
    # A live grpcio client (no keepalive of its own) answers the server's PINGs: its Watch stays open.
    with channel(home) as ch:
        stream = iter(mesh_pb2_grpc.DiscoveryStub(ch).Watch(watch_request(), timeout=30))
        assert next(stream).services
        time.sleep(3 * (LIMITS.keepalive_s + LIMITS.ack_timeout_s))
        assert plane.plane.metrics.watch_streams == 1

        # A peer that opens a Watch, then reads nothing (so acknowledges no PING), is cut off.
        sock = tls_socket(home)
        client = ngh2.Connection(ngh2.Role.CLIENT, ngh2.Configuration())
        client.initiate_connection({})
        path = b"/meshctl.control.v1.Discovery/Watch"
        headers = [(b":method", b"POST"), (b":scheme", b"https"), (b":path", path), (b":authority", b"control"),
                   (b"content-type", b"application/grpc"), (b"te", b"trailers")]  # fmt: skip
        stream_id = client.send_request(headers)
        body = watch_request().SerializeToString()
        client.send_data(stream_id, b"\0" + len(body).to_bytes(4, "big") + body, end_stream=True)
        sock.sendall(client.data_to_send())
        assert eventually(lambda: plane.plane.metrics.watch_streams == 2)
        assert eventually(lambda: plane.plane.metrics.watch_streams == 1, timeout=5 * LIMITS.keepalive_s)
        with pytest.raises((ConnectionError, ssl.SSLError)):  # noqa: PT012 - read to the end of what was sent
            while sock.recv(65536):
                pass
            raise ConnectionResetError("closed")
        sock.close()
        assert plane.plane.metrics.watch_streams == 1  # the live client is untouched


def test_renewal_serves_the_new_certificate_to_new_connections(home: Home, plane: Plane) -> None:
    def served_serial() -> int:
        with tls_socket(home) as sock:
            der = sock.getpeercert(binary_form=True)
            assert der is not None
            return int(x509.load_der_x509_certificate(der).serial_number)

    identity = plane.plane._identity
    assert identity is not None
    before = served_serial()
    assert served_serial() == before  # not yet due: the same certificate
    with channel(home) as ch:
        stream = iter(mesh_pb2_grpc.DiscoveryStub(ch).Watch(watch_request(), timeout=30))
        assert next(stream).services
        identity.renew_at = datetime.now(UTC)  # due now: the next handshake renews
        after = served_serial()
        assert after != before
        assert served_serial() == after
        # A connection made before the renewal keeps working; a new grpcio client verifies the new one.
        assert plane.plane.metrics.watch_streams == 1
        with channel(home) as fresh:
            assert mesh_pb2_grpc.IdentityStub(fresh).Certify(certify_request(), timeout=10).leaf_der


def test_refused_watch_has_the_status_and_reason(home: Home, plane: Plane) -> None:
    with channel(home) as ch, pytest.raises(grpc.RpcError) as caught:
        next(iter(mesh_pb2_grpc.DiscoveryStub(ch).Watch(watch_request(token="guessed"), timeout=10)))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "token not recognised"
    assert plane.plane.metrics.watch_streams == 0


def test_many_streams_on_one_connection_and_graceful_stop(home: Home, plane: Plane) -> None:
    with channel(home) as ch:
        streams = [iter(mesh_pb2_grpc.DiscoveryStub(ch).Watch(watch_request(), timeout=30)) for _ in range(5)]
        assert all(next(s).services for s in streams)
        assert plane.plane.metrics.watch_streams == 5
        plane.run(plane.plane.stop(grace=2.0))
        for stream in streams:
            assert list(stream) == []  # ended with OK, not an error
        assert plane.plane.metrics.watch_streams == 0


def _call_status(home: Home, path: bytes, body: bytes, grpc_timeout: bytes, wait_s: float) -> dict[bytes, bytes]:
    """One call from a raw HTTP/2 client that sends grpc-timeout and never cancels: the status block the
    server ends it with (trailers, or a trailers-only response)."""
    sock = tls_socket(home)
    sock.settimeout(wait_s)
    client = ngh2.Connection(ngh2.Role.CLIENT, ngh2.Configuration())
    client.initiate_connection({})
    headers = [(b":method", b"POST"), (b":scheme", b"https"), (b":path", path), (b":authority", b"control"),
               (b"content-type", b"application/grpc"), (b"te", b"trailers"),
               (b"grpc-timeout", grpc_timeout)]  # fmt: skip
    stream_id = client.send_request(headers)
    client.send_data(stream_id, b"\0" + len(body).to_bytes(4, "big") + body, end_stream=True)
    sock.sendall(client.data_to_send())
    deadline = time.monotonic() + wait_s  # the server's keepalive PINGs keep the socket busy: bound the wait
    try:
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            assert data, "the server closed the connection before the call ended"
            client.receive_data(data)
            for event in client.events():
                block = dict(getattr(event, "headers", None) or ())
                if b"grpc-status" in block:
                    return block
            sock.sendall(client.data_to_send())  # acknowledgements, window updates
        raise AssertionError(f"the call did not end within {wait_s} s")
    finally:
        sock.close()


def test_a_call_past_its_grpc_timeout_ends_with_deadline_exceeded(home: Home, plane: Plane) -> None:
    # A client that sends a deadline and never cancels (a proxy that hung) does not hold its Watch forever.
    started = time.monotonic()
    watch = watch_request().SerializeToString()
    status = _call_status(home, b"/meshctl.control.v1.Discovery/Watch", watch, b"300m", wait_s=10)
    assert status[b"grpc-status"] == b"4", status  # DEADLINE_EXCEEDED
    assert time.monotonic() - started < 8
    assert eventually(lambda: plane.plane.metrics.watch_streams == 0)
    malformed = _call_status(home, b"/meshctl.control.v1.Discovery/Watch", watch, b"soon", wait_s=10)
    assert malformed[b"grpc-status"] == b"13" and b"malformed grpc-timeout" in malformed[b"grpc-message"]
    # A deadline long enough changes nothing: the certificate comes back.
    with channel(home) as ch:
        assert mesh_pb2_grpc.IdentityStub(ch).Certify(certify_request(), timeout=10).leaf_der
