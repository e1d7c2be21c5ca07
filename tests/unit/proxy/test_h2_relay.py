"""Exchanges between a downstream and an upstream HTTP/2 connection, driven in memory.

A python-h2 client plays the app calling through the proxy and a python-h2 server plays the upstream;
the proxy's sessions sit between them with fake routing, pool and clock, so every byte is inspectable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)

from meshctl.proxy.errors import DeadlineExceeded, Failure, UpstreamReset
from meshctl.proxy.h2.core import Outbox
from meshctl.proxy.h2.ends import DownstreamH2, UpstreamH2
from meshctl.proxy.h2.exchange import Exchange
from meshctl.proxy.h2.headers import RequestHead
from meshctl.proxy.h2.relay import DownstreamSession, UpstreamSession
from tests.unit.proxy.h2_peers import lingering_client


def grpc_request(path: bytes = b"/pkg.Svc/Call", **extra: bytes) -> list[tuple[bytes, bytes]]:
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path),
        (b":authority", b"svc.ns.svc.cluster.local:7000"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ]
    return headers + [(k.replace("_", "-").encode(), v) for k, v in extra.items()]


class FakeTimers:
    def __init__(self) -> None:
        self.now = 100.0
        self.pending: list[tuple[float, Callable[[], None], FakeHandle]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeHandle:
        handle = FakeHandle()
        self.pending.append((when, callback, handle))
        return handle

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [p for p in self.pending if p[0] <= self.now and not p[2].cancelled]
        self.pending = [p for p in self.pending if p not in due]
        for _, callback, _ in due:
            callback()


class FakeHandle:
    cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakePlan:
    failure: Failure | None = None
    timeout_s: float | None = None
    endpoint: Any = "app"
    finished: list[tuple[int, int | None]] = field(default_factory=list)
    abandoned: int = 0
    endpoints: list[Any] = field(default_factory=list)

    tap = None  # nobody taps in these tests
    tap_trailers: list[tuple[bytes, bytes]] | None = None

    def tapped(self, request: bool, data: bytes) -> None:
        raise AssertionError("an untapped request must not report body chunks")

    budget = None  # no retryable routes in these tests
    delay_s = 0.0
    set_cookie: bytes | None = None

    def retry(self, status: int, grpc_status: int | None, latency_ms: float) -> bool:
        return False

    def repick(self, exc: BaseException | None = None) -> bool:
        return True

    def finish(self, status: int, grpc_status: int | None, latency_ms: float) -> None:
        self.finished.append((status, grpc_status))

    def abandon(self) -> None:
        self.abandoned += 1

    def rescue(self, exc: BaseException) -> Failure:
        if isinstance(exc, DeadlineExceeded):
            return Failure(504, 4, "deadline exceeded")
        if isinstance(exc, UpstreamReset):
            return Failure(502, 14, str(exc))
        return Failure(500, 13, "internal")


class FakePolicy:
    def __init__(self) -> None:
        self.plans: list[FakePlan] = []

    def plan(self, head: RequestHead) -> FakePlan:
        plan = FakePlan()
        if head.authority.startswith(b"nowhere"):
            plan.failure = Failure(503, 14, "no endpoints for nowhere")
        self.plans.append(plan)
        return plan


class Mesh:
    """One client connection, one upstream connection, the proxy's two sessions between them."""

    def __init__(self, client: H2Connection | None = None) -> None:
        self.outbox = Outbox()
        self.timers = FakeTimers()
        self.policy = FakePolicy()
        if client is None:
            client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
            client.initiate_connection()
        self.client = client
        self.app = H2Connection(H2Configuration(client_side=False, header_encoding=None))
        self.app.initiate_connection()
        self.to_client: list[bytes] = []
        self.to_app: list[bytes] = []
        self.up = UpstreamSession(UpstreamH2(self.outbox), "app", lambda s: None)
        self.up.side.connected(self.to_app.append)
        self.down = self.downstream(self.to_client)
        self.client_events: list[Any] = []
        self.app_events: list[Any] = []
        self.app_autoack = True
        self.pump()

    def downstream(self, sink: list[bytes]) -> DownstreamSession:
        side = DownstreamH2(self.outbox)
        side.connected(sink.append)
        return DownstreamSession(side, self.policy, self, self.timers)

    def connect(self, exchange: Exchange) -> None:  # the Connector: one upstream connection
        assert exchange.attach(self.up)

    def pump(self) -> None:
        for _ in range(1000):
            self.outbox.flush()
            moved = False
            if self.to_app:
                data = b"".join(self.to_app)
                self.to_app.clear()
                for ev in self.app.receive_data(data):
                    self.app_events.append(ev)
                    if isinstance(ev, DataReceived) and self.app_autoack:
                        self.app.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                moved = True
            if self.to_client:
                data = b"".join(self.to_client)
                self.to_client.clear()
                for ev in self.client.receive_data(data):
                    self.client_events.append(ev)
                    if isinstance(ev, DataReceived):
                        self.client.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                moved = True
            out = self.client.data_to_send()
            if out:
                self.down.receive(out)
                moved = True
            out = self.app.data_to_send()
            if out:
                self.up.receive(out)
                moved = True
            if not moved:
                return
        raise AssertionError("no quiescence")

    def of(self, events: list[Any], kind: type, sid: int | None = None) -> list[Any]:
        return [e for e in events if isinstance(e, kind) and sid in (None, getattr(e, "stream_id", None))]


def test_unary_grpc_passes_headers_data_and_trailers_intact() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request(x_custom=b"v1"))
    m.client.send_data(1, b"\x00\x00\x00\x00\x03abc", end_stream=True)
    m.pump()
    (req,) = m.of(m.app_events, RequestReceived)
    assert req.headers == grpc_request(x_custom=b"v1")
    assert b"".join(e.data for e in m.of(m.app_events, DataReceived)) == b"\x00\x00\x00\x00\x03abc"
    assert m.of(m.app_events, StreamEnded)
    sid = req.stream_id
    m.app.send_headers(sid, [(b":status", b"200"), (b"content-type", b"application/grpc")])
    m.app.send_data(sid, b"\x00\x00\x00\x00\x02ok")
    m.app.send_headers(sid, [(b"grpc-status", b"0"), (b"grpc-message", b"fine")], end_stream=True)
    m.pump()
    (resp,) = m.of(m.client_events, ResponseReceived)
    assert resp.headers == [(b":status", b"200"), (b"content-type", b"application/grpc")]
    assert b"".join(e.data for e in m.of(m.client_events, DataReceived)) == b"\x00\x00\x00\x00\x02ok"
    (trailers,) = m.of(m.client_events, TrailersReceived)
    assert trailers.headers == [(b"grpc-status", b"0"), (b"grpc-message", b"fine")]
    assert m.policy.plans[0].finished == [(200, 0)]
    assert not m.down.exchanges and not m.up.exchanges


def test_streams_map_both_ways_across_connections() -> None:
    m = Mesh()
    other_sink: list[bytes] = []
    other = m.downstream(other_sink)
    other_client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    other_client.initiate_connection()
    m.client.send_headers(1, grpc_request(b"/a"), end_stream=True)
    m.client.send_headers(3, grpc_request(b"/b"), end_stream=True)
    other.receive(other_client.data_to_send())
    other_client.send_headers(1, grpc_request(b"/c"), end_stream=True)
    other.receive(other_client.data_to_send())
    m.pump()
    paths = {dict(e.headers)[b":path"]: e.stream_id for e in m.of(m.app_events, RequestReceived)}
    assert set(paths) == {b"/a", b"/b", b"/c"}
    for path in (b"/c", b"/b", b"/a"):  # answered in reverse order, each with its own body
        m.app.send_headers(paths[path], [(b":status", b"200"), (b"content-type", b"application/grpc")])
        m.app.send_data(paths[path], path)
        m.app.send_headers(paths[path], [(b"grpc-status", b"0")], end_stream=True)
    m.pump()
    assert [e.data for e in m.of(m.client_events, DataReceived, 1)] == [b"/a"]
    assert [e.data for e in m.of(m.client_events, DataReceived, 3)] == [b"/b"]
    got = [e for e in other_client.receive_data(b"".join(other_sink)) if isinstance(e, DataReceived)]
    assert [(e.stream_id, e.data) for e in got] == [(1, b"/c")]


def test_bidi_streaming_interleaves_both_directions() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request())
    m.pump()
    (req,) = m.of(m.app_events, RequestReceived)
    m.app.send_headers(req.stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")])
    for n in range(5):
        m.client.send_data(1, b"ping%d" % n)
        m.pump()
        assert m.of(m.app_events, DataReceived)[-1].data == b"ping%d" % n
        m.app.send_data(req.stream_id, b"pong%d" % n)
        m.pump()
        assert m.of(m.client_events, DataReceived)[-1].data == b"pong%d" % n
    m.client.end_stream(1)
    m.app.send_headers(req.stream_id, [(b"grpc-status", b"0")], end_stream=True)
    m.pump()
    assert m.of(m.client_events, TrailersReceived) and m.policy.plans[0].finished == [(200, 0)]


def test_request_body_is_acknowledged_only_as_it_moves_upstream() -> None:
    m = Mesh()
    m.app_autoack = False  # the upstream app does not read
    m.client.send_headers(1, grpc_request())
    m.pump()
    sent = 0
    body = bytes(range(256)) * 64  # 16 KiB
    for _ in range(200):  # offer 3.2 MiB; the client stalls on its window long before
        room = min(m.client.local_flow_control_window(1), len(body))
        if room == 0:
            break
        m.client.send_data(1, body[:room])
        sent += room
        m.pump()
    received = sum(len(e.data) for e in m.of(m.app_events, DataReceived))
    assert received == 65535  # the app's initial window
    held = sum(len(c) for c in m.down.exchanges[1].req_q or ())
    assert held == sent - received and held <= m.down.side.limits.stream_window
    assert m.client.local_flow_control_window(1) == 0
    # The app starts reading: everything flows, nothing is lost or reordered.
    m.app_autoack = True
    for ev in m.of(m.app_events, DataReceived):
        m.app.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
    m.pump()
    got = b"".join(e.data for e in m.of(m.app_events, DataReceived))
    assert len(got) == sent and got == (body * (sent // len(body) + 1))[:sent]


def test_response_waits_for_downstream_window() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request(), end_stream=True)
    m.pump()
    (req,) = m.of(m.app_events, RequestReceived)
    m.app.send_headers(req.stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")])
    for _ in range(4):
        m.app.send_data(req.stream_id, b"x" * 16000)
    m.app.send_headers(req.stream_id, [(b"grpc-status", b"0")], end_stream=True)
    m.pump()
    assert sum(len(e.data) for e in m.of(m.client_events, DataReceived)) == 64000
    assert m.of(m.client_events, TrailersReceived)


def test_no_route_is_a_trailers_only_unavailable_for_grpc() -> None:
    m = Mesh()
    headers = [(k, b"nowhere:1" if k == b":authority" else v) for k, v in grpc_request()]
    m.client.send_headers(1, headers, end_stream=True)
    m.pump()
    (resp,) = m.of(m.client_events, ResponseReceived)
    fields = dict(resp.headers)
    assert fields[b":status"] == b"200" and fields[b"grpc-status"] == b"14"
    assert fields[b"mesh-proxy-error"] == b"no endpoints for nowhere"
    assert m.of(m.client_events, StreamEnded, 1) and not m.of(m.app_events, RequestReceived)
    assert m.policy.plans[0].finished == [(200, 14)]


def test_no_route_for_plain_h2_uses_the_rescued_http_status() -> None:
    m = Mesh()
    m.client.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
                              (b":authority", b"nowhere:80")], end_stream=True)  # fmt: skip
    m.pump()
    (resp,) = m.of(m.client_events, ResponseReceived)
    assert dict(resp.headers)[b":status"] == b"503"
    assert dict(resp.headers)[b"mesh-proxy-error"] == b"no endpoints for nowhere"
    assert b"".join(e.data for e in m.of(m.client_events, DataReceived)) == b"no endpoints for nowhere\n"
    assert m.policy.plans[0].finished == [(503, None)]


def test_grpc_timeout_is_forwarded_then_enforced() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request(grpc_timeout=b"500m"), end_stream=True)
    m.pump()
    (req,) = m.of(m.app_events, RequestReceived)
    assert dict(req.headers)[b"grpc-timeout"] == b"500m"
    m.timers.advance(0.4)
    m.pump()
    assert not m.of(m.client_events, ResponseReceived)
    m.timers.advance(0.2)
    m.pump()
    (resp,) = m.of(m.client_events, ResponseReceived)
    assert dict(resp.headers)[b"grpc-status"] == b"4"
    (reset,) = m.of(m.app_events, StreamReset)
    assert reset.error_code == ErrorCodes.CANCEL
    assert m.policy.plans[0].finished == [(200, 4)]


def test_upstream_reset_mid_stream_ends_with_unavailable_trailers() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request(), end_stream=True)
    m.pump()
    (req,) = m.of(m.app_events, RequestReceived)
    m.app.send_headers(req.stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")])
    m.app.send_data(req.stream_id, b"part")
    m.app.reset_stream(req.stream_id, ErrorCodes.INTERNAL_ERROR)
    m.pump()
    (trailers,) = m.of(m.client_events, TrailersReceived)
    assert dict(trailers.headers)[b"grpc-status"] == b"14"
    assert b"mesh-proxy-error" in dict(trailers.headers)
    assert m.policy.plans[0].finished == [(200, 14)]


def test_upstream_connection_loss_answers_every_request() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request(), end_stream=True)
    m.client.send_headers(3, grpc_request(), end_stream=True)
    m.pump()
    m.up.lost("connection reset")
    m.pump()
    statuses = {e.stream_id: dict(e.headers)[b"grpc-status"] for e in m.of(m.client_events, ResponseReceived)}
    assert statuses == {1: b"14", 3: b"14"}


def test_refused_stream_is_replayed() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request())
    m.client.send_data(1, b"body", end_stream=True)
    m.pump()
    (first,) = m.of(m.app_events, RequestReceived)
    m.app.reset_stream(first.stream_id, ErrorCodes.REFUSED_STREAM)
    m.pump()
    requests = m.of(m.app_events, RequestReceived)
    assert len(requests) == 2
    again = requests[1].stream_id
    assert [e.data for e in m.of(m.app_events, DataReceived, again)] == [b"body"]
    m.app.send_headers(again, [(b":status", b"200"), (b"grpc-status", b"0")], end_stream=True)
    m.pump()
    assert dict(m.of(m.client_events, ResponseReceived)[0].headers)[b"grpc-status"] == b"0"


def test_client_cancel_resets_upstream_and_releases() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request())
    m.pump()
    m.client.reset_stream(1, ErrorCodes.CANCEL)
    m.pump()
    (reset,) = m.of(m.app_events, StreamReset)
    assert reset.error_code == ErrorCodes.CANCEL
    assert m.policy.plans[0].abandoned == 1 and not m.down.exchanges and not m.up.exchanges


def test_early_response_stops_the_client_upload() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request())
    m.client.send_data(1, b"first")
    m.pump()
    (req,) = m.of(m.app_events, RequestReceived)
    m.app.send_headers(req.stream_id, [(b":status", b"200"), (b"grpc-status", b"3")], end_stream=True)
    m.pump()
    assert m.of(m.client_events, StreamReset, 1)[0].error_code == ErrorCodes.NO_ERROR
    assert m.of(m.app_events, StreamReset)[0].error_code == ErrorCodes.CANCEL
    assert m.policy.plans[0].finished == [(200, 3)]


def test_drain_waits_for_in_flight_requests() -> None:
    m = Mesh(client=lingering_client())  # python-h2 as it is would stop at the first GOAWAY
    m.client.send_headers(1, grpc_request(), end_stream=True)
    m.pump()
    idle: list[bool] = []
    m.down.drain(lambda: idle.append(True))
    m.pump()
    assert m.of(m.client_events, ConnectionTerminated) and not idle
    (req,) = m.of(m.app_events, RequestReceived)
    m.app.send_headers(req.stream_id, [(b":status", b"200"), (b"grpc-status", b"0")], end_stream=True)
    m.pump()
    assert idle == [True]
