"""HTTP/2 requests translated for an HTTP/1.1 app, with an in-memory transport (no sockets)."""

from __future__ import annotations

from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import DataReceived, ResponseReceived, StreamEnded, StreamReset, TrailersReceived

from meshctl.proxy.errors import Failure
from meshctl.proxy.h2.core import Outbox
from meshctl.proxy.h2.ends import DownstreamH2
from meshctl.proxy.h2.exchange import Exchange
from meshctl.proxy.h2.headers import RequestHead
from meshctl.proxy.h2.http1 import Http1Upstream
from meshctl.proxy.h2.relay import DownstreamSession


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class Plan:
    failure: Failure | None = None
    timeout_s: float | None = None
    endpoint: Any = "app"

    def __init__(self) -> None:
        self.finished: list[tuple[int, int | None]] = []

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
        return False

    def finish(self, status: int, grpc_status: int | None, latency_ms: float) -> None:
        self.finished.append((status, grpc_status))

    def abandon(self) -> None:
        pass

    def rescue(self, exc: BaseException) -> Failure:
        return Failure(502, 14, str(exc))


class OnePlan:
    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def plan(self, head: RequestHead) -> Plan:
        return self._plan


class Flush:
    """The pool's Flusher: flushes at once (never pending)."""

    pending = False

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def __call__(self) -> None:
        self.outbox.flush()


class Rig:
    def __init__(self) -> None:
        self.outbox = Outbox()
        self.outbox_flush = Flush(self.outbox)
        self.released: list[Http1Upstream] = []
        self.tcp: list[bool] = []
        self.client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.client.initiate_connection()
        side = DownstreamH2(self.outbox)
        self.sink: list[bytes] = []
        side.connected(self.sink.append)
        self.plan = Plan()
        self.down = DownstreamSession(side, OnePlan(self.plan), self, self)
        self.conn = Http1Upstream(self, "app")  # type: ignore[arg-type]
        self.transport = FakeTransport()
        self.conn.connection_made(self.transport)  # type: ignore[arg-type]
        self.events: list[Any] = []

    # connector, timers and pool in one
    def connect(self, exchange: Exchange) -> None:
        assert exchange.attach(self.conn)

    def time(self) -> float:
        return 0.0

    def call_at(self, when: float, callback: Any) -> Any:
        raise AssertionError("no timers here")

    def release(self, conn: Http1Upstream) -> None:
        self.released.append(conn)

    def discard(self, conn: Http1Upstream) -> None:
        pass

    def opened(self, conn: Http1Upstream, up: bool) -> None:
        self.tcp.append(up)

    def send(self) -> None:
        self.down.receive(self.client.data_to_send())
        self.outbox.flush()

    def app_says(self, data: bytes) -> None:
        self.conn.data_received(data)
        self.outbox.flush()
        self.events += self.client.receive_data(b"".join(self.sink))
        self.sink.clear()


def test_post_with_unknown_length_is_sent_chunked_and_answered() -> None:
    rig = Rig()
    rig.client.send_headers(
        1,
        [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/books?x=1"),
         (b":authority", b"books:7000"), (b"cookie", b"a=1"), (b"cookie", b"b=2"), (b"te", b"trailers")],
    )  # fmt: skip
    rig.client.send_data(1, b"hello")
    rig.client.send_data(1, b"", end_stream=True)
    rig.send()
    sent = bytes(rig.transport.written)
    head, _, body = sent.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /books?x=1 HTTP/1.1"
    assert b"host: books:7000" in lines and b"cookie: a=1; b=2" in lines
    assert b"transfer-encoding: chunked" in lines and not [x for x in lines if x.startswith(b"te:")]
    assert body == b"5\r\nhello\r\n0\r\n\r\n"
    rig.app_says(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: keep-alive\r\nX-A: 1\r\n\r\nok")
    (resp,) = [e for e in rig.events if isinstance(e, ResponseReceived)]
    assert resp.headers == [(b":status", b"201"), (b"content-length", b"2"), (b"x-a", b"1")]
    assert b"".join(e.data for e in rig.events if isinstance(e, DataReceived)) == b"ok"
    assert [e for e in rig.events if isinstance(e, StreamEnded)]
    assert rig.plan.finished == [(201, None)] and rig.released == [rig.conn]


def test_chunked_response_trailers_become_h2_trailers() -> None:
    rig = Rig()
    rig.client.send_headers(
        1, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"a")], end_stream=True
    )
    rig.send()
    assert bytes(rig.transport.written).startswith(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
    rig.app_says(b"HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n")  # its fields are not the final response's
    rig.app_says(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Pad:  v \t\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 9 \r\n\r\n"
    )
    (trailers,) = [e for e in rig.events if isinstance(e, TrailersReceived)]
    assert trailers.headers == [(b"x-sum", b"9")]  # names lowered, values stripped, as in the head
    (resp,) = [e for e in rig.events if isinstance(e, ResponseReceived)]
    assert resp.headers == [(b":status", b"200"), (b"x-pad", b"v")]


def test_app_closing_mid_response_resets_the_client_stream() -> None:
    rig = Rig()
    rig.client.send_headers(
        1, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"a")], end_stream=True
    )
    rig.send()
    rig.app_says(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    rig.conn.connection_lost(None)
    rig.outbox.flush()
    rig.events += rig.client.receive_data(b"".join(rig.sink))
    assert [e for e in rig.events if isinstance(e, StreamReset)]
    assert rig.plan.finished == [(200, None)]


def test_app_failing_before_a_response_is_a_502() -> None:
    rig = Rig()
    rig.client.send_headers(
        1, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"a")], end_stream=True
    )
    rig.send()
    rig.app_says(b"garbage\r\n\r\n")
    (resp,) = [e for e in rig.events if isinstance(e, ResponseReceived)]
    assert dict(resp.headers)[b":status"] == b"502" and b"mesh-proxy-error" in dict(resp.headers)
    assert rig.transport.closed
