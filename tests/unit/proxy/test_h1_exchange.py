"""The HTTP/1.1 exchange without sockets: a fake client connection, fake upstream connections, a fake clock,
and the real request stack (routing, balancing, metrics) underneath."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from meshctl.proxy.errors import ConnectFailed, UpstreamClosed
from meshctl.proxy.h1.ends import PROGRESS, RESPONSE
from meshctl.proxy.h1.exchange import REPLAY_LIMIT, Exchange
from meshctl.proxy.h1.request import RequestHead, RequestReader
from meshctl.proxy.h1.response import ResponseReader
from meshctl.proxy.h1.response_head import ResponseHead
from meshctl.proxy.stack import Stack
from tests.unit.proxy.test_stack import AUTH, NS, make_runtime


class FakeUpstream:
    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.wbuf: list[bytes] = []
        self.sent = b""
        self.reusable = False
        self.closed = False
        self.owner: Exchange | None = None
        self.reader = ResponseReader(self)

    def unbind(self) -> None:  # as upstream.Upstream: Exchange.attach pointed the reader at the exchange
        self.owner = None
        self.reader.sink = self

    def pause_reading(self, paused: bool) -> None:
        pass

    def flush(self) -> None:
        self.sent += b"".join(self.wbuf)
        self.wbuf = []

    def close(self) -> None:
        self.closed = True

    def answer(self, wire: bytes) -> None:
        """The upstream's bytes, parsed as the real connection parses them."""
        self.reader.feed(wire)

    # ResponseSink: what upstream.Upstream forwards to its owner
    def on_response_head(self, head: ResponseHead) -> None:
        self.reusable = head.keep_alive
        if self.owner is not None:
            self.owner.on_response_head(head)

    def on_response_body(self, data: bytes) -> None:
        if self.owner is not None:
            self.owner.on_response_body(data)

    def on_response_end(self, trailers: list[tuple[bytes, bytes]] | None, last: bytes = b"") -> None:
        if self.owner is not None:
            self.owner.on_response_end(trailers, last)


class FakeClient:
    """The downstream connection as an exchange sees it; connections are handed out by the test."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.wbuf: list[bytes] = []
        self.close_after = False
        self.writing_paused = False
        self.peer_identity: str | None = None
        self.clock = 100.0
        self.armed: list[tuple[int, float]] = []
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.dials: list[tuple[Hashable, bool]] = []
        self.done: list[Exchange] = []
        self.aborted: str | None = None

    def peer_address(self) -> str:
        return "127.0.0.9:5555"

    def now(self) -> float:
        return self.clock

    def arm(self, kind: int, seconds: float, now: float = 0.0) -> None:
        assert now in (0.0, self.clock)  # a time the exchange read, not an old one
        self.armed.append((kind, seconds))

    def later(self, seconds: float, callback: Callable[[], None]) -> None:
        self.timers.append((seconds, callback))

    def progress(self) -> None:
        pass

    def buffering(self, full: bool) -> None:
        pass

    def connect(self, ex: Exchange, fresh: bool) -> None:
        self.dials.append((ex.endpoint, fresh))

    def exchange_done(self, ex: Exchange, reuse: object) -> None:
        self.done.append(ex)

    def flush(self) -> None:
        pass

    def abort(self, reason: str) -> None:
        self.aborted = reason

    @property
    def written(self) -> bytes:
        return b"".join(self.wbuf)


def request(wire: bytes) -> tuple[RequestHead, list[bytes]]:
    heads: list[RequestHead] = []
    body: list[bytes] = []

    class Sink:
        def on_request_head(self, head: RequestHead) -> None:
            heads.append(head)

        def on_request(self, head: RequestHead) -> None:
            heads.append(head)

        def on_request_body(self, data: bytes) -> None:
            body.append(data)

        def on_request_end(self, trailers: object) -> None:
            pass

    RequestReader(Sink()).feed(wire)
    return heads[0], body


def started(wire: bytes, kind: str = "outbound") -> tuple[FakeClient, Exchange]:
    runtime = make_runtime()
    client = FakeClient(Stack(runtime, kind, False))
    head, body = request(wire)
    ex = Exchange(client, head)
    ex.start()
    for chunk in body:
        ex.on_body(chunk)
    ex.on_end(None)
    return client, ex


def attach(ex: Exchange) -> FakeUpstream:
    up = FakeUpstream(ex.endpoint)
    ex.attach(up, reused=False)
    up.flush()
    return up


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def test_a_request_goes_up_and_its_response_comes_back_once_counted() -> None:
    client, ex = started(b"GET /books/1 HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    assert client.dials == [(ex.endpoint, False)] and (RESPONSE, 10.0) in client.armed
    up = attach(ex)
    assert up.sent.startswith(b"GET /books/1 HTTP/1.1\r\nHost: books:7000\r\n")
    client.clock += 0.25
    up.answer(OK)
    assert client.written.startswith(b"HTTP/1.1 200 OK\r\n") and client.written.endswith(b"ok")
    assert client.done == [ex] and ex.done
    stats = client.stack.runtime.metrics.route("outbound", AUTH, "[DEFAULT]", True, NS, "books")
    assert stats.requests == 1 and stats.latency.sum == 250.0


def test_a_refused_connect_is_retried_on_another_endpoint_with_the_whole_request() -> None:
    client, ex = started(b"POST /b HTTP/1.1\r\nHost: books:7000\r\ncontent-length: 5\r\n\r\nhello")
    first = ex.endpoint
    ex.connect_failed(ConnectFailed("refused"))
    assert client.dials[-1] == (ex.endpoint, False) and ex.endpoint != first
    up = attach(ex)
    assert up.sent.endswith(b"\r\n\r\nhello")
    up.answer(OK)
    assert client.written.startswith(b"HTTP/1.1 200")
    stats = client.stack.runtime.metrics.route("outbound", AUTH, "[DEFAULT]", True, NS, "books")
    assert (stats.requests, stats.actual_requests) == (1, 2)


def test_a_peer_proxy_that_never_reached_its_app_is_retried_elsewhere() -> None:
    client, ex = started(b"GET /books/2 HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    first = attach(ex)
    first.answer(b"HTTP/1.1 502 Bad Gateway\r\nmesh-proxy-error: connect failed\r\ncontent-length: 0\r\n\r\n")
    assert first.closed and client.written == b""  # nothing of the failed attempt reached the client
    second = attach(ex)
    assert second.key != first.key and second.sent.startswith(b"GET /books/2 ")
    second.answer(OK)
    assert client.written.startswith(b"HTTP/1.1 200")


def test_an_app_failure_is_passed_through_not_retried() -> None:
    client, ex = started(b"GET /books/3 HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    up = attach(ex)
    up.answer(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")  # the app's own 502
    assert client.written.startswith(b"HTTP/1.1 502") and len(client.dials) == 1


def test_a_body_too_large_to_keep_is_never_replayed() -> None:
    body = b"x" * (REPLAY_LIMIT + 1)
    client, ex = started(b"PUT /b HTTP/1.1\r\nHost: books:7000\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    up = attach(ex)
    up.answer(b"HTTP/1.1 502 Bad Gateway\r\nmesh-proxy-error: connect failed\r\ncontent-length: 0\r\n\r\n")
    assert client.written.startswith(b"HTTP/1.1 502") and len(client.dials) == 1


def test_a_pooled_connection_closed_under_a_bodiless_request_is_resent_on_a_fresh_one() -> None:
    client, ex = started(b"GET /books/4 HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    up = FakeUpstream(ex.endpoint)
    ex.attach(up, reused=True)
    ex.upstream_failed(UpstreamClosed("closed"))
    assert client.dials[-1] == (ex.endpoint, True)
    attach(ex).answer(OK)
    assert client.written.startswith(b"HTTP/1.1 200")


def test_a_new_connection_closed_under_an_idempotent_bodiless_request_is_redialed_once() -> None:
    # A killed app's listener outlives its kept-alive connections by a moment and resets what it queued.
    client, ex = started(b"GET /books/4 HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    attach(ex)
    ex.upstream_failed(UpstreamClosed("reset"))
    assert client.dials[-1] == (ex.endpoint, True) and client.written == b""
    up = attach(ex)
    assert up.sent.startswith(b"GET /books/4 HTTP/1.1\r\n")
    ex.upstream_failed(UpstreamClosed("reset"))
    assert len(client.dials) == 2 and client.written.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"mesh-proxy-error: upstream closed\r\n" in client.written


def test_a_pooled_then_a_new_connection_closed_under_a_get_is_still_redialed() -> None:
    client, ex = started(b"GET /books/4 HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    ex.attach(FakeUpstream(ex.endpoint), reused=True)
    ex.upstream_failed(UpstreamClosed("closed"))
    attach(ex)
    ex.upstream_failed(UpstreamClosed("reset"))
    assert client.dials[1:] == [(ex.endpoint, True), (ex.endpoint, True)] and client.written == b""
    attach(ex).answer(OK)
    assert client.written.startswith(b"HTTP/1.1 200")


def test_a_new_connection_closed_under_a_post_is_not_sent_again() -> None:
    client, ex = started(b"POST /books/4/rate HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    attach(ex)
    ex.upstream_failed(UpstreamClosed("closed"))
    assert len(client.dials) == 1 and client.written.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")


def test_no_response_before_the_deadline_is_504_with_the_reason() -> None:
    client, ex = started(b"GET /books/5 HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    attach(ex)
    client.clock += 10.0
    ex.expired()
    assert client.written.startswith(b"HTTP/1.1 504 Gateway Timeout\r\nmesh-proxy-error: response timeout\r\n")
    assert client.done == [ex]


def test_an_unknown_service_is_answered_without_a_connection() -> None:
    client, ex = started(b"GET / HTTP/1.1\r\nHost: nowhere:80\r\n\r\n")
    assert client.dials == [] and client.written.startswith(b"HTTP/1.1 503")
    assert b"mesh-proxy-error: unknown service\r\n" in client.written


def test_a_request_still_sending_waits_on_the_progress_deadline() -> None:
    runtime = make_runtime()
    client = FakeClient(Stack(runtime, "outbound", False))
    head, _ = request(b"POST /b HTTP/1.1\r\nHost: books:7000\r\ncontent-length: 5\r\n\r\n")
    ex = Exchange(client, head)
    ex.start()
    assert client.armed[-1] == (PROGRESS, 0.0)
    ex.on_body(b"hello")
    ex.on_end(None)
    assert client.armed[-1] == (RESPONSE, 10.0)


def test_a_cut_response_is_reported_as_a_failure_and_the_client_cut_off() -> None:
    client, ex = started(b"GET /books/6 HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    up = attach(ex)
    up.answer(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
    ex.upstream_failed(UpstreamClosed("gone"))
    assert client.aborted == "upstream closed"
    stats = client.stack.runtime.metrics.route("outbound", AUTH, "[DEFAULT]", True, NS, "books")
    assert {k: v.count for k, v in stats.responses.items()} == {(200, None, True): 1}


class RecordingTap:
    """A tap hub that records what the pipeline tells it."""

    def __init__(self, active: bool = True) -> None:
        self.active = active
        self.events: list[tuple[object, ...]] = []

    def begin(self, direction: str, src: str, dst: str, src_identity: str | None, dst_identity: str | None,
              tls: bool, method: str, authority: str, path: str, route: str,
              headers: list[tuple[bytes, bytes]]) -> RecordingTap:  # fmt: skip
        self.events.append(("begin", direction, src, dst, dst_identity, tls, method, authority, path, route))
        return self

    def response(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.events.append(("response", status))

    def body(self, request: bool, data: bytes) -> None:
        self.events.append(("body", request, data))

    def end(self, grpc_status: int | None, failure: str | None, request_bytes: int, response_bytes: int,
            trailers: list[tuple[bytes, bytes]] | None) -> None:  # fmt: skip
        self.events.append(("end", grpc_status, failure, request_bytes, response_bytes))


def tapped(wire: bytes, tap: RecordingTap) -> tuple[FakeClient, Exchange]:
    runtime = make_runtime()
    runtime.tap = tap
    client = FakeClient(Stack(runtime, "outbound", False))
    head, body = request(wire)
    ex = Exchange(client, head)
    ex.start()
    for piece in body:
        ex.on_body(piece)
    ex.on_end(None)
    return client, ex


def test_a_tapped_request_reports_its_start_response_bodies_and_end_once() -> None:
    tap = RecordingTap()
    client, ex = tapped(b"POST /books/7 HTTP/1.1\r\nHost: books:7000\r\ncontent-length: 3\r\n\r\nabc", tap)
    attach(ex).answer(OK)
    begin, *rest = tap.events
    assert begin[:2] == ("begin", "outbound") and begin[2] == "127.0.0.9:5555"
    assert begin[4] in ("b1", "b2") and begin[5] is True
    assert begin[6:] == ("POST", "books:7000", "/books/7", "[DEFAULT]")
    assert rest == [("body", True, b"abc"), ("response", 200), ("body", False, b"ok"), ("end", None, None, 3, 2)]


def test_a_failed_tapped_request_ends_with_the_proxys_reason() -> None:
    tap = RecordingTap()
    tapped(b"GET / HTTP/1.1\r\nHost: nowhere:80\r\n\r\n", tap)
    assert tap.events[-1] == ("end", None, "unknown service", 0, 0)


def test_nobody_tapping_costs_one_flag_read() -> None:
    tap = RecordingTap(active=False)
    client, ex = tapped(b"GET /books/8 HTTP/1.1\r\nHost: books:7000\r\n\r\n", tap)
    attach(ex).answer(OK)
    assert tap.events == [] and ex.plan is not None and ex.plan.tap is None
