"""HTTP/2 abuse through the proxy's listener: rapid reset, floods, an HPACK bomb.

A raw client writes attack bytes (built with hyperframe and hpack) to the outbound proxy
over a real socket, reading what comes back on the side so the proxy is never blocked on a full buffer.
Each attack must end in a GOAWAY naming the abuse (or, for the HPACK bomb, in per-stream resets),
must not pass the abusive requests to the app, and must leave the proxy serving the next connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
)

from tests.integration.test_proxy_grpc_support import AUTHORITY, Mesh
from tests.reliability.apps import RecordingApp
from tests.reliability.test_h2_streams import GOOD, exchange

pytestmark = pytest.mark.integration

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REQUEST = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/abuse"), (b":authority", AUTHORITY.encode())]
FLOOD = 10_000
ENHANCE_YOUR_CALM = 0xB


@dataclass
class Seen:
    goaway: int | None = None  # its error code
    resets: int = 0
    closed: bool = False
    kinds: dict[int, int] = field(default_factory=dict)


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


def _frames(frames: list[Frame]) -> bytes:
    return b"".join(f.serialize() for f in frames)


def attack(port: int, payload: bytes, timeout: float = 15.0) -> Seen:
    """Write the preface and `payload`; read frames until GOAWAY + EOF or `timeout`."""
    seen = Seen()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:

        def send() -> None:
            with contextlib.suppress(OSError):  # the proxy closing mid-attack is what we are after
                sock.sendall(PREFACE + SettingsFrame(0).serialize() + payload)

        writer = threading.Thread(target=send, daemon=True)
        writer.start()
        buf, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                seen.closed = True
                break
            buf += data
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                length, kind = int.from_bytes(buf[:3], "big"), buf[3]
                seen.kinds[kind] = seen.kinds.get(kind, 0) + 1
                if kind == 7:
                    seen.goaway = int.from_bytes(buf[13:17], "big")
                elif kind == 3:
                    seen.resets += 1
                buf = buf[9 + length :]
        writer.join(timeout)
    return seen


def still_serving(mesh: Mesh) -> None:
    outcomes, goaway = exchange(mesh.outbound_port, [GOOD])
    assert goaway is None and outcomes[1].headers.get(b":status") == b"200", (goaway, outcomes)


def abuse_requests(app: RecordingApp) -> int:
    return sum(1 for line in app.lines() if "/abuse" in line)


def test_rapid_reset_is_cut_off_with_enhance_your_calm(mesh: Mesh, app: RecordingApp) -> None:
    block = Encoder().encode(REQUEST)  # a fresh encoder per stream: literal fields, the decoder keeps up
    frames: list[Frame] = []
    for i in range(FLOOD):
        sid = 2 * i + 1
        frames += [HeadersFrame(sid, block, flags=["END_HEADERS", "END_STREAM"]), RstStreamFrame(sid, error_code=8)]
    before = abuse_requests(app)
    seen = attack(mesh.outbound_port, _frames(frames))
    assert seen.goaway == ENHANCE_YOUR_CALM, seen
    assert abuse_requests(app) - before < 500  # far fewer than the 10,000 opened (CVE-2023-44487)
    still_serving(mesh)


@pytest.mark.parametrize("kind", ["settings", "ping", "priority"])
def test_control_frame_floods_end_in_goaway(mesh: Mesh, kind: str) -> None:
    frames: list[Frame]
    if kind == "settings":
        frames = [SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 65535}) for _ in range(FLOOD)]
    elif kind == "ping":
        frames = [PingFrame(0, opaque_data=i.to_bytes(8, "big")) for i in range(FLOOD)]
    else:  # PRIORITY produces no event: nghttp2's glitch limit is the guard there
        frames = [PriorityFrame(1 + 2 * (i % 100), depends_on=0, stream_weight=16) for i in range(5 * FLOOD)]
    seen = attack(mesh.outbound_port, _frames(frames))
    assert seen.goaway == ENHANCE_YOUR_CALM and seen.closed, seen
    still_serving(mesh)


def test_continuation_flood_is_a_connection_error(mesh: Mesh) -> None:
    fragment = b"\x00\x01a\x40" + b"b" * 64  # literal fields without indexing; the block never ends
    frames: list[Frame] = [HeadersFrame(1, Encoder().encode(REQUEST))]
    frames += [ContinuationFrame(1, fragment) for _ in range(FLOOD)]
    seen = attack(mesh.outbound_port, _frames(frames))
    assert seen.goaway == ENHANCE_YOUR_CALM and seen.closed, seen  # nghttp2 counts it as a flood
    still_serving(mesh)


def test_hpack_bomb_never_reaches_the_app(mesh: Mesh, app: RecordingApp) -> None:
    # One 4 KiB field enters the dynamic table; each later request references it 2,000 times (8 MiB).
    encoder = Encoder()
    first = encoder.encode([*REQUEST, (b"x-bomb", b"b" * 4000)])
    index = bytes([0x80 | 62])  # indexed field: the newest dynamic-table entry
    frames: list[Frame] = [HeadersFrame(1, first, flags=["END_HEADERS", "END_STREAM"])]
    for i in range(1, 50):
        frames.append(HeadersFrame(2 * i + 1, encoder.encode(REQUEST) + index * 2000,
                                   flags=["END_HEADERS", "END_STREAM"]))  # fmt: skip
    before = abuse_requests(app)
    seen = attack(mesh.outbound_port, _frames(frames), timeout=10.0)
    # nghttp2 resets each oversized request (a stream error, RFC 9113 §10.5.1): none is decoded into the app.
    assert seen.resets >= 49, seen
    assert abuse_requests(app) - before <= 1  # the first request is small and legitimate
    still_serving(mesh)
