"""HTTP/2 stream errors stay stream errors, through a real proxy over a real socket.

A raw python-h2 client opens one connection to the outbound proxy (HTTP/2 prior knowledge) and sends a bad
stream next to a good one in the same write. RFC 9113 §8.1.1: a malformed request (content-length that is
not 1*DIGIT, repeated, or that disagrees with the DATA received) resets its own stream with PROTOCOL_ERROR;
the connection, and the good stream on it, live on. CONNECT is refused on its stream with a reason and
never reaches the app (the HTTP/1.1 path refuses it too).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, DataReceived, ResponseReceived, StreamEnded, StreamReset

from tests.integration.test_proxy_grpc_support import AUTHORITY, Mesh
from tests.reliability.apps import RecordingApp

pytestmark = pytest.mark.integration

Header = tuple[bytes, bytes]


@dataclass
class Outcome:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""
    reset: int | None = None
    ended: bool = False


@pytest.fixture(scope="module")
def app() -> Iterator[RecordingApp]:
    server = RecordingApp()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mesh(app: RecordingApp) -> Iterator[Mesh]:
    running = Mesh(app.port, app_protocol="http")
    yield running
    running.stop()


def request(method: bytes, path: bytes, *extra: Header) -> list[Header]:
    return [(b":method", method), (b":scheme", b"http"), (b":path", path), (b":authority", AUTHORITY.encode()),
            *extra]  # fmt: skip


def exchange(port: int, streams: list[tuple[list[Header], list[bytes]]], timeout: float = 10.0,
             ) -> tuple[dict[int, Outcome], ConnectionTerminated | None]:  # fmt: skip
    """Send every stream (headers, then each DATA chunk, the last one ending it) in one write; collect outcomes.

    The client sends header blocks exactly as given: no validation, no normalisation, no length checks.
    """
    conn = H2Connection(H2Configuration(client_side=True, header_encoding=None, validate_outbound_headers=False,
                                        normalize_outbound_headers=False))  # fmt: skip
    conn.initiate_connection()
    outcomes: dict[int, Outcome] = {}
    for index, (headers, chunks) in enumerate(streams):
        sid = 1 + 2 * index
        outcomes[sid] = Outcome()
        conn.send_headers(sid, headers, end_stream=not chunks)
        for n, data in enumerate(chunks):
            conn.send_data(sid, data, end_stream=n == len(chunks) - 1)
    goaway: ConnectionTerminated | None = None
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(conn.data_to_send())
        while time.monotonic() < deadline and not all(o.ended or o.reset is not None for o in outcomes.values()):
            data = sock.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                outcome = outcomes.get(getattr(ev, "stream_id", 0) or 0)
                if isinstance(ev, ConnectionTerminated):
                    goaway = ev
                elif outcome is None:
                    continue
                elif isinstance(ev, ResponseReceived):
                    outcome.headers = dict(ev.headers)
                elif isinstance(ev, DataReceived):
                    outcome.body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, StreamEnded):
                    outcome.ended = True
                elif isinstance(ev, StreamReset):
                    outcome.reset = ev.error_code
            if goaway is not None:
                break
            sock.sendall(conn.data_to_send())
    return outcomes, goaway


GOOD: tuple[list[Header], list[bytes]] = (request(b"GET", b"/good"), [])


@pytest.mark.parametrize(
    ("lengths", "chunks"),
    [
        ([b"5"], [b"abc"]),  # shorter than announced
        ([b"2"], [b"abcde"]),  # longer than announced
        ([b"5"], [b"abc", b"defgh"]),  # longer, over two DATA frames
        ([b"+5"], [b"abcde"]),
        ([b"5_0"], [b"abcde"]),
        ([b"5", b"5"], [b"abcde"]),  # repeated
        ([b"5", b"6"], [b"abcde"]),  # conflicting
        ([b"-1"], [b"abcde"]),
    ],
    ids=["short", "long", "long-2-frames", "plus", "underscore", "repeated", "conflicting", "negative"],
)
def test_bad_content_length_resets_only_its_stream(mesh: Mesh, lengths: list[bytes], chunks: list[bytes]) -> None:
    bad = request(b"POST", b"/bad", *((b"content-length", n) for n in lengths))
    outcomes, goaway = exchange(mesh.outbound_port, [(bad, chunks), GOOD])
    assert goaway is None, f"connection closed: GOAWAY {goaway}"
    assert outcomes[1].reset == ErrorCodes.PROTOCOL_ERROR, outcomes[1]
    assert outcomes[3].headers.get(b":status") == b"200" and outcomes[3].body == b"ok /good", outcomes[3]


def test_content_length_with_end_stream_on_headers_is_malformed(mesh: Mesh) -> None:
    bad = request(b"POST", b"/bad", (b"content-length", b"3"))
    outcomes, goaway = exchange(mesh.outbound_port, [(bad, []), GOOD])
    assert goaway is None and outcomes[1].reset == ErrorCodes.PROTOCOL_ERROR, (goaway, outcomes)
    assert outcomes[3].headers.get(b":status") == b"200"


def test_a_body_matching_its_content_length_passes(mesh: Mesh, app: RecordingApp) -> None:
    ok = request(b"POST", b"/sized", (b"content-length", b"8"))
    outcomes, goaway = exchange(mesh.outbound_port, [(ok, [b"abc", b"defgh"]), GOOD])
    assert goaway is None
    assert outcomes[1].headers.get(b":status") == b"200" and outcomes[1].body == b"ok /sized", outcomes[1]
    assert "POST /sized HTTP/1.1" in app.lines()


def test_connect_is_refused_on_its_stream_and_never_reaches_the_app(mesh: Mesh, app: RecordingApp) -> None:
    connect = [(b":method", b"CONNECT"), (b":authority", AUTHORITY.encode())]
    outcomes, goaway = exchange(mesh.outbound_port, [(connect, [b"tunnel bytes"]), GOOD])
    assert goaway is None
    refused = outcomes[1]
    assert refused.headers.get(b":status") == b"405", refused
    assert b"CONNECT" in refused.headers.get(b"mesh-proxy-error", b""), refused
    assert outcomes[3].headers.get(b":status") == b"200"
    assert not [line for line in app.lines() if line.startswith("CONNECT")], app.lines()
