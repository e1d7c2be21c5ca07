"""Trace headers at the ingress: started when absent, completed from whichever form a request carries,
left alone when unreadable, and never added by other listeners."""

from __future__ import annotations

import re

from meshctl.proxy.policy import tracing
from meshctl.proxy.stack import Stack
from tests.unit.proxy.test_breaker import Source
from tests.unit.proxy.test_stack import make_runtime

TRACE = b"4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = b"00f067aa0ba902b7"


def completed(*given: tuple[bytes, bytes]) -> dict[bytes, bytes]:
    headers = [(b"accept", b"*/*"), *given]
    tracing.ensure(headers)
    out = dict(headers)
    assert len(out) == len(headers), headers  # no header twice
    return out


def test_a_request_without_context_starts_a_sampled_trace_in_every_form() -> None:
    out = completed()
    match = re.fullmatch(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-01", out[b"traceparent"])
    assert match is not None
    trace, span = match.groups()
    assert out[b"b3"] == trace + b"-" + span + b"-1"
    assert (out[b"x-b3-traceid"], out[b"x-b3-spanid"], out[b"x-b3-sampled"]) == (trace, span, b"1")
    assert completed()[b"traceparent"] != out[b"traceparent"]  # a new trace each time


def test_one_form_is_completed_with_the_same_ids() -> None:
    out = completed((b"traceparent", b"00-%s-%s-00" % (TRACE, SPAN)))
    assert out[b"b3"] == TRACE + b"-" + SPAN + b"-0" and out[b"x-b3-traceid"] == TRACE
    out = completed((b"X-B3-TraceId", SPAN), (b"X-B3-SpanId", SPAN))  # a 64-bit B3 trace id
    assert out[b"traceparent"] == b"00-0000000000000000%s-%s-01" % (SPAN, SPAN) and b"x-b3-traceid" not in out
    out = completed((b"b3", TRACE + b"-" + SPAN))
    assert out[b"traceparent"].startswith(b"00-" + TRACE) and out[b"x-b3-spanid"] == SPAN


def test_unreadable_context_is_left_alone() -> None:
    for value in (b"garbage", b"00-%s-%s" % (TRACE, SPAN), b"00-%s-%s-01" % (b"0" * 32, SPAN)):
        assert completed((b"traceparent", value)) == {b"accept": b"*/*", b"traceparent": value}


def test_only_the_ingress_adds_headers() -> None:
    runtime = make_runtime()
    for kind, added in (("ingress", True), ("outbound", False)):
        headers: list[tuple[bytes, bytes]] = []
        Stack(runtime, kind, False).plan("GET", "books", "/", headers, Source())
        assert bool(headers) is added
