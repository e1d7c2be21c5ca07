"""HTTP/2 requests to an HTTP/1.1 app: a kept-alive app connection that closes under a request loses nothing.

An app closes an idle keep-alive connection when its own timeout fires (Node's 5 s, gunicorn's 2 s), and
the proxy may write the next request into it at that very moment: the connection then closes without a
byte of response. The app cannot have acted on the request, and the HTTP/1.1 path already sends such a
bodiless request again on a new connection. Regression: a request that arrived over HTTP/2 (gRPC-capable
clients, a peer proxy's mTLS hop) was answered `502` instead, through outbound → mTLS → inbound → app.
A request with a body is not replayed (the app may have read it): it still fails, and says so.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from tests.integration.test_proxy_grpc_support import Mesh
from tests.reliability.test_h2_streams import exchange, request

pytestmark = pytest.mark.integration


class StaleKeepAliveApp:
    """Answers the first request of every connection with keep-alive, then resets the connection, unanswered,
    when the next request arrives on it: the worst timing of an app's idle timeout, every time."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answered: list[bytes] = []
        self.dropped: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            buffered = b""
            served = 0
            while True:
                while b"\r\n\r\n" not in buffered:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffered += data
                head, buffered = buffered.split(b"\r\n\r\n", 1)
                line = head.split(b"\r\n", 1)[0]
                length = next((int(h.split(b":", 1)[1]) for h in head.split(b"\r\n")[1:]
                               if h.lower().startswith(b"content-length:")), 0)  # fmt: skip
                while len(buffered) < length:
                    buffered += conn.recv(65536)
                buffered = buffered[length:]
                if served:
                    with self._lock:
                        self.dropped.append(line)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close → RST
                    return
                served += 1
                with self._lock:
                    self.answered.append(line)
                body = b"ok " + line.split(b" ")[1]
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

    def stop(self) -> None:
        self.sock.close()


@pytest.fixture
def app() -> Iterator[StaleKeepAliveApp]:
    server = StaleKeepAliveApp()
    yield server
    server.stop()


@pytest.fixture
def mesh(app: StaleKeepAliveApp) -> Iterator[Mesh]:
    running = Mesh(app.port, app_protocol="http")
    yield running
    running.stop()


@pytest.mark.parametrize("method", [b"GET", b"DELETE", b"POST"])
def test_a_bodiless_request_on_a_connection_the_app_closed_is_sent_again(
    mesh: Mesh, app: StaleKeepAliveApp, method: bytes
) -> None:
    statuses = []
    for i in range(6):  # one h2 connection each; the inbound proxy reuses its one app connection each time
        outcomes, goaway = exchange(mesh.outbound_port, [(request(method, f"/r{i}".encode()), [])])
        assert goaway is None
        statuses.append((outcomes[1].headers.get(b":status"), outcomes[1].body))
    assert statuses == [(b"200", f"ok /r{i}".encode()) for i in range(6)]
    assert app.dropped, "the app never closed a kept-alive connection under a request: the test proves nothing"
    assert sorted(app.answered) == sorted(f"{method.decode()} /r{i} HTTP/1.1".encode() for i in range(6))


def test_a_request_with_a_body_is_not_replayed_and_fails_with_a_reason(mesh: Mesh, app: StaleKeepAliveApp) -> None:
    first, _ = exchange(mesh.outbound_port, [(request(b"GET", b"/warm"), [])])
    assert first[1].headers.get(b":status") == b"200"
    outcomes, _ = exchange(mesh.outbound_port, [(request(b"POST", b"/pay", (b"content-length", b"3")), [b"abc"])])
    assert outcomes[1].headers.get(b":status") == b"502"
    assert outcomes[1].headers.get(b"mesh-proxy-error") == b"upstream reset"
    assert app.dropped == [b"POST /pay HTTP/1.1"]
