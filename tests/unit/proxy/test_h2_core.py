"""The HTTP/2 connection cores, driven by frames that python-h2 (or hyperframe) builds, no sockets.

python-h2 is the peer: an independent implementation, so the tests check interoperation, not ngh2 with itself.
"""

from __future__ import annotations

from typing import Any

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, PingReceived, ResponseReceived, StreamReset
from h2.settings import SettingCodes, Settings
from hpack import Encoder
from hyperframe.frame import ContinuationFrame, HeadersFrame, PingFrame

from meshctl.proxy.h2 import headers
from meshctl.proxy.h2.core import Outbox
from meshctl.proxy.h2.ends import DownstreamH2, UpstreamH2
from meshctl.proxy.h2.events import Body, Failed, Request, Reset, Response, Trailers
from meshctl.proxy.h2.grpc import format_timeout, parse_timeout
from meshctl.proxy.h2.headers import Malformed, Refused, RequestHead, check_request
from tests.unit.proxy.h2_peers import lingering_client

GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/x"), (b":authority", b"svc:7000")]



def client(raw: bool = False) -> H2Connection:
    """A test client; `raw` sends header blocks exactly as given (no validation, no lowercasing)."""
    config = H2Configuration(
        client_side=True,
        header_encoding=None,
        validate_outbound_headers=not raw,
        normalize_outbound_headers=not raw,
    )
    conn = H2Connection(config)
    conn.initiate_connection()
    return conn


def server() -> H2Connection:
    conn = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    conn.initiate_connection()
    return conn


def handshake(cli: H2Connection) -> tuple[DownstreamH2, list[Any]]:
    down = DownstreamH2(Outbox())
    assert down.receive(cli.data_to_send()) == []
    cli.receive_data(down.output())
    down.receive(cli.data_to_send())  # the client's SETTINGS ACK
    return down, []


def test_request_events_carry_the_parsed_head() -> None:
    cli = client()
    down, _ = handshake(cli)
    cli.send_headers(1, [*GET, (b"content-type", b"application/grpc"), (b"grpc-timeout", b"5S")])
    cli.send_data(1, b"hello", end_stream=True)
    events = down.receive(cli.data_to_send())
    assert [type(e) for e in events] == [Request, Body]
    request, body = events
    assert isinstance(request, Request) and isinstance(body, Body)
    assert request.head.authority == b"svc:7000" and request.head.path == b"/x"
    assert request.head.grpc_timeout == b"5S" and not request.end_stream
    assert body.data == b"hello" and body.end_stream


def test_a_consumer_takes_heads_and_data_as_calls_and_the_rest_as_events() -> None:
    """With on_request/on_response/on_body set, those come as calls in frame order, before the read's
    other events are returned; nothing else changes."""
    cli = client()
    down, _ = handshake(cli)
    calls: list[tuple[Any, ...]] = []
    down.on_request = lambda sid, head, end: calls.append(("request", sid, head.path, end))
    down.on_body = lambda sid, data, end: calls.append(("body", sid, data, end))
    cli.send_headers(1, GET)
    cli.send_data(1, b"hello")
    cli.send_headers(3, GET, end_stream=True)
    cli.send_headers(5, GET, end_stream=True)
    cli.reset_stream(5)  # cancelled in the same read: never reaches the consumer
    cli.send_headers(1, [(b"x-trailer", b"1")], end_stream=True)
    events = down.receive(cli.data_to_send())
    assert calls == [("request", 1, b"/x", False), ("body", 1, b"hello", False), ("request", 3, b"/x", True)]
    assert [type(e) for e in events] == [Trailers]

    srv = server()
    up = UpstreamH2(Outbox())
    responses: list[tuple[Any, ...]] = []
    up.on_response = lambda sid, status, headers, end: responses.append(("response", sid, status, end))
    up.on_body = lambda sid, data, end: responses.append(("body", sid, data, end))
    srv.receive_data(up.output())
    up.receive(srv.data_to_send())
    sid = up.start(GET, end_stream=True)
    assert sid == 1
    srv.receive_data(up.output())
    srv.send_headers(1, [(b":status", b"200")])
    srv.send_data(1, b"world", end_stream=True)
    assert up.receive(srv.data_to_send()) == []
    assert responses == [("response", 1, 200, False), ("body", 1, b"world", True)]


@pytest.mark.parametrize(
    "extra",
    [
        [(b"Uppercase", b"x")],
        [(b"connection", b"keep-alive")],
        [(b"transfer-encoding", b"chunked")],
        [(b"upgrade", b"h2c")],
        [(b"te", b"gzip")],
        [(b"x-a", b"bad\r\nvalue")],
        [(b"x-a", b"nul\x00")],
        [(b"x-a", b" padded")],
        [(b"bad name", b"x")],
        [(b":protocol", b"websocket")],
        [(b"host", b"other:1")],
    ],
)
def test_malformed_request_resets_only_its_stream(extra: list[tuple[bytes, bytes]]) -> None:
    cli = client(raw=True)
    down, _ = handshake(cli)
    cli.send_headers(1, [*GET, *extra], end_stream=True)
    cli.send_headers(3, GET, end_stream=True)
    events = down.receive(cli.data_to_send())
    assert [(type(e), getattr(e, "stream_id", None)) for e in events] == [(Request, 3)]
    resets = [e for e in cli.receive_data(down.output()) if isinstance(e, StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(1, ErrorCodes.PROTOCOL_ERROR)]
    assert down.failed is None


def test_dropped_bodies_of_malformed_streams_still_return_connection_window() -> None:
    """Bodies that disagree with their content-length are dropped, not forwarded, and their bytes credited back."""
    cli = client(raw=True)
    down, _ = handshake(cli)
    for n in range(70):  # 70 x 16 KiB: more than the 1 MiB connection window, so it fits only if credit comes back
        sid = 1 + 2 * n
        cli.send_headers(sid, [(b":method", b"POST"), *GET[1:], (b"content-length", b"5")])
        cli.send_data(sid, b"x" * 16_384, end_stream=True)
        events = down.receive(cli.data_to_send())
        assert [type(e) for e in events] == [Request, Reset], events
        resets = [e for e in cli.receive_data(down.output()) if isinstance(e, StreamReset)]
        assert [(r.stream_id, r.error_code) for r in resets] == [(sid, ErrorCodes.PROTOCOL_ERROR)]
    assert down.failed is None and not down.streams


def test_pseudo_header_rules() -> None:
    with pytest.raises(Malformed):
        check_request([(b":method", b"GET"), (b"x", b"1"), (b":path", b"/"), (b":scheme", b"http")])
    with pytest.raises(Malformed):
        check_request([(b":method", b"GET"), (b":scheme", b"http")])
    with pytest.raises(Malformed):
        check_request([*GET, (b":path", b"/again")])
    with pytest.raises(Malformed):
        check_request([*GET[:2], (b":path", b"relative")])
    with pytest.raises(Malformed):  # would become two request lines in HTTP/1.1
        check_request([(b":method", b"GET /admin"), *GET[1:]])
    with pytest.raises(Malformed):
        check_request([*GET[:2], (b":path", b"/a b"), GET[3]])
    with pytest.raises(Malformed):
        check_request([*GET[:3], (b":authority", b"svc\x01:1")])
    with pytest.raises(Malformed):  # CONNECT names only an authority
        check_request([(b":method", b"CONNECT"), (b":authority", b"svc:1"), (b":path", b"/")])
    with pytest.raises(Refused):  # well-formed, but the mesh carries no tunnels
        check_request([(b":method", b"CONNECT"), (b":authority", b"svc:1")])


def test_check_request_sets_every_field_of_the_head() -> None:
    """check_request builds its heads without RequestHead.__init__: equal to heads built by it, field by field."""
    grpc = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/pkg.Svc/Call"), (b":authority", b"svc:1"),
            (b"content-type", b"application/grpc"), (b"grpc-timeout", b"1S"), (b"content-length", b"5"),
            (b"mesh-timeout", b"2s")]  # fmt: skip
    assert check_request(list(GET)) == RequestHead(b"GET", b"http", b"/x", b"svc:7000", b"", None, GET, None, None)
    assert check_request(list(grpc)) == RequestHead(
        b"POST", b"http", b"/pkg.Svc/Call", b"svc:1", b"application/grpc", b"1S", grpc, 5, b"2s"
    )
    slow = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b"host", b"svc:2")]  # no :authority
    assert check_request(list(slow)) == RequestHead(b"GET", b"http", b"/", b"svc:2", b"", None, slow, None, None)


def test_paths_remembered_as_valid_are_only_those_that_passed() -> None:
    """check_request skips the :path pattern for paths that passed it lately: a refused one is refused
    every time, one that passed is taken again, and long ones are never kept."""
    for _ in range(2):
        with pytest.raises(Malformed):
            check_request([*GET[:2], (b":path", b"/a\x7fb"), GET[3]])
        assert check_request([*GET[:2], (b":path", b"/pkg.Svc/Call"), GET[3]]).path == b"/pkg.Svc/Call"
    assert b"/a\x7fb" not in headers._VALID_PATHS and b"/pkg.Svc/Call" in headers._VALID_PATHS
    long = b"/" + b"x" * headers._VALID_LEN
    assert check_request([*GET[:2], (b":path", long), GET[3]]).path == long
    assert long not in headers._VALID_PATHS


def test_101st_stream_is_refused_and_never_surfaces() -> None:
    cli = client()
    cli.remote_settings = Settings(client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
    down = DownstreamH2(Outbox())  # the client ignores the advertised limit of 100
    for n in range(101):
        cli.send_headers(1 + 2 * n, GET)
    events = down.receive(cli.data_to_send())
    assert len(events) == 100 and all(isinstance(e, Request) for e in events)
    assert max(e.stream_id for e in events if isinstance(e, Request)) == 199
    resets = [e for e in cli.receive_data(down.output()) if isinstance(e, StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(201, ErrorCodes.REFUSED_STREAM)]
    # Once a stream finishes, a new one is accepted again.
    down.send_headers(1, [(b":status", b"200")], end_stream=False)
    cli.end_stream(1)
    down.receive(cli.data_to_send())
    down.send_data(1, b"", end_stream=True)
    cli.receive_data(down.output())
    cli.send_headers(203, GET, end_stream=True)
    assert [type(e) for e in down.receive(cli.data_to_send())] == [Request]


def test_rapid_reset_in_one_read_never_surfaces_and_trips_goaway() -> None:
    cli = client()
    down, _ = handshake(cli)
    sent = 0
    seen: list[Any] = []
    for batch in range(10):
        for n in range(50):
            sid = 1 + 2 * (batch * 50 + n)
            cli.send_headers(sid, GET, end_stream=True)
            cli.reset_stream(sid, ErrorCodes.CANCEL)
            sent += 1
        seen += down.receive(cli.data_to_send())
        if down.failed is not None:
            break
    assert not [e for e in seen if isinstance(e, Request)]  # none of them reached the consumer
    assert isinstance(seen[-1], Failed)
    assert sent <= 2 * down.limits.reset_floor
    goaway = [e for e in cli.receive_data(down.output()) if isinstance(e, ConnectionTerminated)]
    assert goaway and goaway[0].error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_rapid_reset_across_reads_trips_goaway() -> None:
    cli = client()
    down, _ = handshake(cli)
    requests = 0
    for n in range(1000):
        sid = 1 + 2 * n
        cli.send_headers(sid, GET, end_stream=True)
        requests += sum(isinstance(e, Request) for e in down.receive(cli.data_to_send()))
        cli.reset_stream(sid, ErrorCodes.CANCEL)
        events = down.receive(cli.data_to_send())
        if any(isinstance(e, Failed) for e in events):
            break
    assert down.failed is not None
    assert requests == down.limits.reset_floor  # cut off at the floor: every stream was reset unanswered


def test_answered_streams_that_are_reset_do_not_count() -> None:
    cli = client()
    down, _ = handshake(cli)
    for n in range(400):
        sid = 1 + 2 * n
        cli.send_headers(sid, GET, end_stream=True)
        down.receive(cli.data_to_send())
        down.send_headers(sid, [(b":status", b"200")])
        cli.receive_data(down.output())
        cli.reset_stream(sid, ErrorCodes.CANCEL)
        down.receive(cli.data_to_send())
    assert down.failed is None


def test_ping_flood_trips_goaway() -> None:
    cli = client()
    down, _ = handshake(cli)
    flood = b"".join(PingFrame(0, opaque_data=b"%08d" % n).serialize() for n in range(600))
    events = down.receive(flood)
    assert isinstance(events[-1], Failed) and "flood" in events[-1].reason


def test_continuation_flood_is_a_connection_error() -> None:
    cli = client()
    down, _ = handshake(cli)
    block = Encoder().encode(GET)
    frames = [HeadersFrame(1, data=block[:4]).serialize()]
    frames += [ContinuationFrame(1, data=b"\x00" * 1000).serialize() for _ in range(100)]
    events = down.receive(b"".join(frames))
    assert isinstance(events[-1], Failed)
    terminated = [e for e in cli.receive_data(down.output()) if isinstance(e, ConnectionTerminated)]
    assert terminated and terminated[0].error_code != ErrorCodes.NO_ERROR


def test_header_list_over_64k_is_refused_with_enhance_your_calm() -> None:
    cli = client()
    down, _ = handshake(cli)
    cli.send_headers(1, [*GET, *[(b"x-big-%d" % n, b"v" * 1000) for n in range(70)]], end_stream=True)
    events = down.receive(cli.data_to_send())
    assert isinstance(events[-1], Failed)
    terminated = [e for e in cli.receive_data(down.output()) if isinstance(e, ConnectionTerminated)]
    assert terminated[0].error_code == ErrorCodes.ENHANCE_YOUR_CALM


def test_graceful_drain_is_two_goaways_and_refuses_later_streams() -> None:
    peer = lingering_client()
    down, _ = handshake(peer)
    peer.send_headers(1, GET, end_stream=True)
    assert [type(e) for e in down.receive(peer.data_to_send())] == [Request]
    down.start_drain()

    def goaways() -> list[int | None]:
        return [e.last_stream_id for e in peer.receive_data(down.output()) if isinstance(e, ConnectionTerminated)]

    assert goaways() == [2**31 - 1]
    down.receive(peer.data_to_send())  # the PING ACK: now the final GOAWAY names stream 1
    assert goaways() == [1]
    assert down.accept_up_to == 1
    peer.send_headers(3, GET, end_stream=True)
    assert down.receive(peer.data_to_send()) == []
    resets = [e for e in peer.receive_data(down.output()) if isinstance(e, StreamReset)]
    assert [(r.stream_id, r.error_code) for r in resets] == [(3, ErrorCodes.REFUSED_STREAM)]
    # The stream accepted before the drain is still answered.
    down.send_headers(1, [(b":status", b"204")], end_stream=True)
    responses = [e for e in peer.receive_data(down.output()) if isinstance(e, ResponseReceived)]
    assert [(r.stream_id, r.headers[0]) for r in responses] == [(1, (b":status", b"204"))]


def test_upstream_goaway_refuses_streams_above_last() -> None:
    up = UpstreamH2(Outbox())
    app = server()
    app.receive_data(up.output())
    up.receive(app.data_to_send())
    first = up.start(GET, end_stream=True)
    second = up.start(GET, end_stream=True)
    assert (first, second) == (1, 3)
    app.receive_data(up.output())
    app.close_connection(ErrorCodes.NO_ERROR, last_stream_id=1)
    events = up.receive(app.data_to_send())
    assert Reset(3, ErrorCodes.REFUSED_STREAM, "refused by upstream GOAWAY") in events
    assert up.capacity() == 0 and 1 in up.streams


def test_upstream_response_trailers_and_malformed_response() -> None:
    up = UpstreamH2(Outbox())
    app = H2Connection(H2Configuration(client_side=False, header_encoding=None, validate_outbound_headers=False))
    app.initiate_connection()
    app.receive_data(up.output())
    up.receive(app.data_to_send())
    good = up.start(GET, end_stream=True)
    bad = up.start(GET, end_stream=True)
    assert good is not None and bad is not None
    app.receive_data(up.output())
    app.send_headers(good, [(b":status", b"200"), (b"content-type", b"application/grpc")])
    app.send_data(good, b"msg")
    app.send_headers(good, [(b"grpc-status", b"0")], end_stream=True)
    app.send_headers(bad, [(b":status", b"200"), (b"x", b"a\nb")], end_stream=True)
    events = up.receive(app.data_to_send())
    kinds = [(type(e), getattr(e, "stream_id", 0)) for e in events]
    assert kinds == [(Response, good), (Body, good), (Trailers, good), (Reset, bad)]


@pytest.mark.parametrize(
    ("length", "body"),
    [(b"5", b"abc"), (b"2", b"abcde"), (b"+5", b"abcde"), (b"5_0", b"abcde")],
    ids=["short", "long", "plus", "underscore"],
)
def test_upstream_response_disagreeing_with_its_length_resets_only_its_stream(length: bytes, body: bytes) -> None:
    up = UpstreamH2(Outbox())
    app = H2Connection(H2Configuration(client_side=False, header_encoding=None, validate_outbound_headers=False))
    app.initiate_connection()
    app.receive_data(up.output())
    up.receive(app.data_to_send())
    bad = up.start(GET, end_stream=True)
    head = up.start([(b":method", b"HEAD"), *GET[1:]], end_stream=True)
    good = up.start(GET, end_stream=True)
    assert bad is not None and head is not None and good is not None
    app.receive_data(up.output())
    app.send_headers(bad, [(b":status", b"200"), (b"content-length", length)])
    app.send_data(bad, body, end_stream=True)
    app.send_headers(head, [(b":status", b"200"), (b"content-length", b"5")], end_stream=True)  # HEAD: no body
    app.send_headers(good, [(b":status", b"200"), (b"content-length", b"2")])
    app.send_data(good, b"ok", end_stream=True)
    events = up.receive(app.data_to_send())
    kinds = [(type(e), getattr(e, "stream_id", 0)) for e in events if not isinstance(e, Response)]
    # Per stream in order; across streams ngh2 reports nghttp2's own resets after the read's other events.
    assert sorted(kinds, key=lambda k: k[1]) == [(Reset, bad), (Body, good)], events
    assert up.failed is None and not up.streams


@pytest.mark.parametrize("told", [True, None])
def test_a_head_response_announces_a_length_without_a_body_whether_told_or_read(told: bool | None) -> None:
    up = UpstreamH2(Outbox())
    app = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    app.initiate_connection()
    app.receive_data(up.output())
    up.receive(app.data_to_send())
    head = up.start([(b":method", b"HEAD"), *GET[1:]], end_stream=True, is_head=told)
    get = up.start(GET, end_stream=True, is_head=False if told else None)
    assert head is not None and get is not None
    app.receive_data(up.output())
    for sid in (head, get):
        app.send_headers(sid, [(b":status", b"200"), (b"content-length", b"5")], end_stream=True)
    events = up.receive(app.data_to_send())
    # The HEAD's answer is whole; a GET's that announces 5 bytes and ends at once is malformed.
    assert [(type(e), getattr(e, "stream_id", 0)) for e in events] == [(Response, head), (Reset, get)], events


def test_ping_is_answered_and_not_surfaced() -> None:
    cli = client()
    down, _ = handshake(cli)
    cli.ping(b"12345678")
    assert down.receive(cli.data_to_send()) == []
    assert not [e for e in cli.receive_data(down.output()) if isinstance(e, PingReceived)]


def test_grpc_timeout_parsing() -> None:
    assert parse_timeout(b"500m") == 0.5
    assert parse_timeout(b"2S") == 2.0
    assert parse_timeout(b"1H") == 3600.0
    assert parse_timeout(b"123456789m") is None  # 9 digits
    assert parse_timeout(b"10x") is None
    assert parse_timeout(b"") is None
    assert format_timeout(0.5) == b"500m"
    assert format_timeout(0.0001) == b"1m"
