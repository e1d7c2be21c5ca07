"""The client's own deadline (`mesh-timeout`): parsed, bounding every attempt with the route's timeout,
forwarded as the time that is left, and answered 504 "deadline exceeded" when spent — on HTTP/1.1 over
the real request stack, and on HTTP/2 in memory."""

from __future__ import annotations

from h2.events import RequestReceived, ResponseReceived

from meshctl.proxy.h1.ends import RESPONSE
from meshctl.proxy.policy import deadline
from meshctl.proxy.stack import Stack
from tests.unit.proxy import test_retry
from tests.unit.proxy.test_h1_exchange import FakeClient, attach, started
from tests.unit.proxy.test_h2_relay import Mesh
from tests.unit.proxy.test_h2_retry import RetryMesh
from tests.unit.proxy.test_stack import make_runtime


def test_values_are_durations_and_anything_else_is_no_deadline() -> None:
    assert deadline.parse(b"250ms") == 0.25 and deadline.parse(b"1.5s") == 1.5 and deadline.parse(b" 2m ") == 120
    assert deadline.parse(b"0ms") == 0.0
    for bad in (b"", b"ms", b"250", b"-1s", b"1e3ms", b"1.s.5s", b"10h", b"1234567890123s"):
        assert deadline.parse(bad) is None, bad
    assert deadline.format_left(0.1234) == b"124ms" and deadline.format_left(-1.0) == b"1ms"


def test_the_deadline_is_armed_forwarded_and_spent_as_504_deadline_exceeded() -> None:
    client, ex = started(b"GET /books/1 HTTP/1.1\r\nHost: books:7000\r\nMesh-Timeout: 300ms\r\n\r\n")
    kind, seconds = client.armed[-1]
    assert kind == RESPONSE and abs(seconds - 0.3) < 1e-9
    up = attach(ex)
    assert b"\r\nMesh-Timeout: 300ms\r\n" in up.sent
    client.clock += 0.3
    ex.expired()
    assert client.written.startswith(b"HTTP/1.1 504 Gateway Timeout\r\nmesh-proxy-error: deadline exceeded\r\n")


def test_a_tighter_route_timeout_wins_and_keeps_its_reason() -> None:
    client, ex = started(b"POST /books.Books/Get HTTP/1.1\r\nHost: books:7000\r\nmesh-timeout: 2s\r\n"
                         b"content-length: 0\r\n\r\n")  # fmt: skip
    kind, seconds = client.armed[-1]
    assert kind == RESPONSE and abs(seconds - 0.25) < 1e-9
    attach(ex)
    client.clock += 0.25
    ex.expired()
    assert b"mesh-proxy-error: response timeout\r\n" in client.written


def test_no_time_left_is_answered_at_once() -> None:
    client, ex = started(b"GET /books/1 HTTP/1.1\r\nHost: books:7000\r\nmesh-timeout: 0ms\r\n\r\n")
    assert client.dials == [] and b"mesh-proxy-error: deadline exceeded\r\n" in client.written


def test_a_retry_fits_inside_the_deadline_and_forwards_what_is_left() -> None:
    rt = test_retry.make_runtime()
    client, ex = test_retry.exchange(rt, b"GET /books HTTP/1.1\r\nHost: books:7000\r\nmesh-timeout: 1s\r\n\r\n")
    first = attach(ex)
    assert b"\r\nmesh-timeout: 1000ms\r\n" in first.sent
    client.clock += 0.4
    first.answer(test_retry.FAIL)
    second = attach(ex)
    assert b"\r\nmesh-timeout: 600ms\r\n" in second.sent
    client.clock += 0.6
    ex.expired()  # the response timer armed for the first attempt ends the whole request
    assert client.written.startswith(b"HTTP/1.1 504") and b"deadline exceeded" in client.written


def test_without_a_header_nothing_changes() -> None:
    client = FakeClient(Stack(make_runtime(), "outbound", False))
    assert client.stack.response_s == deadline.RESPONSE_S
    client, ex = started(b"GET /books/1 HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    assert ex.deadline is None and client.armed[-1] == (RESPONSE, deadline.RESPONSE_S)


def get(timeout: bytes) -> list[tuple[bytes, bytes]]:
    return [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/books"),
            (b":authority", b"svc.ns.svc.cluster.local:7000"), (b"mesh-timeout", timeout)]  # fmt: skip


def test_h2_forwards_the_time_left_and_answers_504_when_spent() -> None:
    m = Mesh()
    m.client.send_headers(1, get(b"500ms"), end_stream=True)
    m.pump()
    (req,) = m.of(m.app_events, RequestReceived)
    headers = dict(req.headers)
    assert headers[b"mesh-timeout"] == b"500ms" and b"grpc-timeout" not in headers
    m.timers.advance(0.5)
    m.pump()
    (resp,) = m.of(m.client_events, ResponseReceived)
    assert dict(resp.headers)[b":status"] == b"504"
    assert m.policy.plans[0].finished == [(504, None)]


def test_h2_retries_forward_what_is_left() -> None:
    m = RetryMesh()
    m.client.send_headers(1, get(b"1s"), end_stream=True)
    m.pump()
    m.timers.advance(0.25)
    first = m.of(m.app_events, RequestReceived)[0].stream_id
    m.app.send_headers(first, [(b":status", b"503")], end_stream=True)
    m.pump()
    again = m.of(m.app_events, RequestReceived)[1]
    assert dict(again.headers)[b"mesh-timeout"] == b"750ms"
