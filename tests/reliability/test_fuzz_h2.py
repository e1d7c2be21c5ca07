"""Fuzzing the HTTP/2 connection cores (meshctl/proxy/h2/core.py, ends.py) with random frames.

Frames are drawn per type (up to ten: HEADERS with HPACK blocks mixing valid and malformed fields, DATA, RST_STREAM,
SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION, PRIORITY, PUSH_PROMISE, unknown types, raw noise)
on a handful of stream ids, and fed in random splits. Properties: `receive` never raises — a problem is
a `Reset` of one stream or a `Failed` connection, which then stays failed; the server side never tracks
more streams than it allows; every event is one of the core's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hpack import Encoder
from hypothesis import given
from hypothesis import strategies as st

from meshctl.proxy.h2.core import Outbox
from meshctl.proxy.h2.ends import DownstreamH2, UpstreamH2
from meshctl.proxy.h2.events import Body, Failed, Goaway, Request, Reset, Response, Trailers, Window
from tests.reliability.fuzzing import FUZZ_HEAVY, corpus

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EVENTS = (Request, Response, Body, Trailers, Reset, Window, Goaway, Failed)
STREAM_IDS = [0, 1, 1, 1, 3, 3, 5, 2, 2**31 - 1]
REQUEST_FIELDS = [(b":method", b"GET"), (b":method", b"POST"), (b":method", b"CONNECT"), (b":scheme", b"http"),
                  (b":path", b"/x"), (b":path", b""), (b":authority", b"svc:7000"), (b":status", b"200"),
                  (b":protocol", b"websocket"), (b"content-length", b"3"), (b"content-length", b"+3"),
                  (b"te", b"trailers"), (b"te", b"gzip"), (b"connection", b"close"), (b"X-Upper", b"1"),
                  (b"x-a", b" padded"), (b"x-a", b"nul\x00"), (b"host", b"other"),
                  (b"grpc-timeout", b"1S")]  # fmt: skip


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream_id.to_bytes(4, "big") + payload


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    encoder = Encoder()  # one HPACK context per connection, as a real peer has
    out: list[bytes] = []
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["headers", "headers", "data", "data", "rst", "settings", "ping", "goaway",
                                     "window", "continuation", "priority", "push", "unknown", "noise"]))  # fmt: skip
        sid = draw(st.sampled_from(STREAM_IDS))
        if kind in ("headers", "continuation"):
            fields = draw(st.lists(st.sampled_from(REQUEST_FIELDS), max_size=8))
            block = encoder.encode(fields) if draw(st.integers(0, 9)) else draw(st.binary(max_size=12))
            flags = draw(st.sampled_from([0x4, 0x5, 0x5, 0x1, 0x0, 0x2D]))
            out.append(frame(1 if kind == "headers" else 9, flags, sid, block))
        elif kind == "data":
            out.append(frame(0, draw(st.sampled_from([0, 1, 1, 8, 9])), sid, draw(st.binary(max_size=64))))
        elif kind == "rst":
            out.append(frame(3, 0, sid, draw(st.integers(0, 15)).to_bytes(4, "big")))
        elif kind == "settings":
            pairs = draw(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 2**32 - 1)), max_size=3))
            body = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in pairs)
            ack = draw(st.booleans()) and draw(st.booleans())
            out.append(frame(4, 1 if ack else 0, 0 if draw(st.integers(0, 5)) else sid, b"" if ack else body))
        elif kind == "ping":
            out.append(frame(6, draw(st.sampled_from([0, 1])), 0, draw(st.binary(min_size=8, max_size=8))))
        elif kind == "goaway":
            payload = draw(st.integers(0, 2**31 - 1)).to_bytes(4, "big") + draw(st.integers(0, 13)).to_bytes(4, "big")
            out.append(frame(7, 0, 0, payload))
        elif kind == "window":
            out.append(frame(8, 0, sid, draw(st.sampled_from([0, 1, 65535, 2**31 - 1])).to_bytes(4, "big")))
        elif kind == "priority":
            out.append(frame(2, 0, sid, draw(st.integers(0, 7)).to_bytes(4, "big") + b"\x10"))
        elif kind == "push":
            out.append(frame(5, 4, sid, (2).to_bytes(4, "big") + encoder.encode([(b":method", b"GET")])))
        elif kind == "unknown":
            out.append(frame(draw(st.integers(10, 255)), draw(st.integers(0, 255)), sid, draw(st.binary(max_size=16))))
        else:
            out.append(draw(st.binary(max_size=24)))
    return b"".join(out)


splits = st.lists(st.integers(min_value=1, max_value=512), max_size=4)


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]


def drive(side: DownstreamH2 | UpstreamH2, data: bytes, cuts: list[int], answer: bool) -> None:
    """Feed the bytes; answer requests as a proxy would (headers, sometimes a body); check the invariants."""
    failed = False
    for piece in pieces(data, cuts):
        events = side.receive(piece)
        assert all(isinstance(e, EVENTS) for e in events), events
        if failed:
            assert [type(e) for e in events] == [Failed], events
        for ev in events:
            if isinstance(ev, Failed):
                failed = True
            elif isinstance(ev, Request) and answer:
                side.send_headers(ev.stream_id, [(b":status", b"200")], end_stream=ev.stream_id % 4 == 1)
                if ev.stream_id % 4 == 3 and side.window(ev.stream_id) > 2:
                    side.send_data(ev.stream_id, b"ok", end_stream=True)
            elif isinstance(ev, Body):
                side.ack(ev.stream_id, len(ev.data))
        assert len(side.streams) <= side.limits.max_concurrent_streams
        side.output()  # what would be written: building it must not fail either


@FUZZ_HEAVY
@given(data=frames(), cuts=splits)
def test_server_core_takes_any_frames(data: bytes, cuts: list[int]) -> None:
    side = DownstreamH2(Outbox())
    drive(side, PREFACE + frame(4, 0, 0, b"") + data, cuts, answer=True)


@FUZZ_HEAVY
@given(data=frames(), cuts=splits, noise=st.binary(max_size=64))
def test_server_core_takes_any_bytes_after_the_preface(data: bytes, cuts: list[int], noise: bytes) -> None:
    side = DownstreamH2(Outbox())
    drive(side, PREFACE + noise + data, cuts, answer=True)


@FUZZ_HEAVY
@given(data=frames(), cuts=splits)
def test_client_core_takes_any_frames_from_an_upstream(data: bytes, cuts: list[int]) -> None:
    side = UpstreamH2(Outbox())
    side.output()
    headers = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/x"), (b":authority", b"svc:7000")]
    assert side.start(headers, end_stream=False) == 1
    assert side.start(headers, end_stream=True) == 3
    drive(side, frame(4, 0, 0, b"") + data, cuts, answer=False)


@pytest.mark.parametrize("path", corpus("h2-frames"), ids=lambda p: p.name)
def test_h2_corpus(path: Path) -> None:
    data = path.read_bytes()
    for cuts in ([], list(range(1, len(data), 9))):
        drive(DownstreamH2(Outbox()), data, cuts, answer=True)
