"""Retries of retryable routes on the HTTP/2 path, in memory: a python-h2 client and app around the
proxy's sessions, with a plan whose route is retryable (the budget itself is tested in test_retry.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from h2.errors import ErrorCodes
from h2.events import DataReceived, RequestReceived, ResponseReceived, StreamEnded, TrailersReceived

from meshctl.proxy.h2.headers import RequestHead
from tests.unit.proxy.test_h2_relay import FakePlan, FakePolicy, Mesh, grpc_request


@dataclass
class RetryingPlan(FakePlan):
    budget: Any = "the destination's budget"
    retried: list[tuple[int, int | None]] = field(default_factory=list)
    allowed: int = 2

    def retry(self, status: int, grpc_status: int | None, latency_ms: float) -> bool:
        failed = grpc_status != 0 if grpc_status is not None else status >= 500
        if not failed or len(self.retried) >= self.allowed:
            return False
        self.retried.append((status, grpc_status))
        return True




class RetryingPolicy(FakePolicy):
    def plan(self, head: RequestHead) -> FakePlan:
        plan = RetryingPlan()
        self.plans.append(plan)
        return plan


class RetryMesh(Mesh):
    def downstream(self, sink: list[bytes]) -> Any:
        self.policy = RetryingPolicy()
        return super().downstream(sink)


def call(m: Mesh) -> None:
    m.client.send_headers(1, grpc_request())
    m.client.send_data(1, b"\x00\x00\x00\x00\x03abc", end_stream=True)
    m.pump()


def requests(m: Mesh) -> list[Any]:
    return m.of(m.app_events, RequestReceived)


def body_of(m: Mesh, sid: int) -> bytes:
    return b"".join(e.data for e in m.of(m.app_events, DataReceived, sid))


def test_a_trailers_only_unavailable_is_retried_with_the_whole_request() -> None:
    m = RetryMesh()
    call(m)
    (first,) = requests(m)
    m.app.send_headers(first.stream_id, [(b":status", b"200"), (b"grpc-status", b"14")], end_stream=True)
    m.pump()
    again = requests(m)[1].stream_id
    assert body_of(m, again) == b"\x00\x00\x00\x00\x03abc" and m.of(m.app_events, StreamEnded, again)
    assert not m.of(m.client_events, ResponseReceived)  # the failed attempt never reached the client
    m.app.send_headers(again, [(b":status", b"200"), (b"grpc-status", b"0")], end_stream=True)
    m.pump()
    (resp,) = m.of(m.client_events, ResponseReceived)
    assert dict(resp.headers)[b"grpc-status"] == b"0"
    plan = m.policy.plans[0]
    assert isinstance(plan, RetryingPlan) and plan.retried == [(200, 14)] and plan.finished == [(200, 0)]


def test_a_status_in_trailers_after_a_response_began_is_passed_through() -> None:
    m = RetryMesh()
    call(m)
    sid = requests(m)[0].stream_id
    m.app.send_headers(sid, [(b":status", b"200"), (b"content-type", b"application/grpc")])
    m.app.send_headers(sid, [(b"grpc-status", b"14")], end_stream=True)
    m.pump()
    (trailers,) = m.of(m.client_events, TrailersReceived)
    assert dict(trailers.headers)[b"grpc-status"] == b"14" and len(requests(m)) == 1


def test_a_plain_5xx_is_retried_and_its_body_dropped() -> None:
    m = RetryMesh()
    m.client.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/books"),
                              (b":authority", b"svc.ns.svc.cluster.local:7000")], end_stream=True)  # fmt: skip
    m.pump()
    sid = requests(m)[0].stream_id
    m.app.send_headers(sid, [(b":status", b"503")])
    m.app.send_data(sid, b"overloaded", end_stream=True)
    m.pump()
    again = requests(m)[1].stream_id
    m.app.send_headers(again, [(b":status", b"200")])
    m.app.send_data(again, b"books", end_stream=True)
    m.pump()
    (resp,) = m.of(m.client_events, ResponseReceived)
    assert dict(resp.headers)[b":status"] == b"200"
    assert b"".join(e.data for e in m.of(m.client_events, DataReceived)) == b"books"


def test_a_reset_before_the_response_is_retried_and_attempts_are_bounded() -> None:
    m = RetryMesh()
    call(m)
    for n in range(3):
        m.app.reset_stream(requests(m)[n].stream_id, ErrorCodes.INTERNAL_ERROR)
        m.pump()
    assert len(requests(m)) == 3
    (resp,) = m.of(m.client_events, ResponseReceived)
    assert dict(resp.headers)[b"grpc-status"] == b"14"  # the last failure is the answer
    assert m.policy.plans[0].finished == [(200, 14)]
