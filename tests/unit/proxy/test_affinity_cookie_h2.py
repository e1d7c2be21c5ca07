"""Session affinity by cookie over HTTP/2: the plan's Set-Cookie is added to the response head the client
gets, after the app's own headers (HTTP/1.1 is covered end to end in tests/reliability/test_balancing.py)."""

from __future__ import annotations

from h2.events import RequestReceived, ResponseReceived

from tests.unit.proxy.test_h2_relay import Mesh, grpc_request


def test_the_affinity_cookie_rides_on_the_response_head() -> None:
    m = Mesh()
    m.client.send_headers(1, grpc_request(), end_stream=True)
    m.pump()
    m.policy.plans[0].set_cookie = b"s=00ff; Path=/; Max-Age=60; HttpOnly"
    (req,) = m.of(m.app_events, RequestReceived)
    m.app.send_headers(req.stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")])
    m.app.send_headers(req.stream_id, [(b"grpc-status", b"0")], end_stream=True)
    m.pump()
    (resp,) = m.of(m.client_events, ResponseReceived)
    assert resp.headers == [(b":status", b"200"), (b"content-type", b"application/grpc"),
                            (b"set-cookie", b"s=00ff; Path=/; Max-Age=60; HttpOnly")]  # fmt: skip
