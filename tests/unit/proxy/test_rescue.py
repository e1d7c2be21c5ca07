"""Every failure maps to one status, gRPC status and reason."""

from __future__ import annotations

import ssl

import pytest

from meshctl.proxy.h2 import types as h2_types
from meshctl.proxy.rescue import (
    BadRequest,
    ConnectFailed,
    HeadTooLarge,
    IdentityMismatch,
    NoEndpoints,
    ResponseTimeout,
    UnknownService,
    UpstreamClosed,
    UpstreamReset,
    render_http1,
    rescue,
)


@pytest.mark.parametrize(
    ("exc", "http", "grpc", "reason"),
    [
        (UnknownService("x"), 503, 14, "unknown service"),
        (NoEndpoints("x"), 503, 14, "no endpoints"),
        (ConnectFailed("x"), 502, 14, "connect failed"),
        (ConnectionRefusedError(), 502, 14, "connect failed"),
        (UpstreamReset("x"), 502, 14, "upstream reset"),
        (UpstreamClosed("x"), 502, 14, "upstream closed"),
        (h2_types.UpstreamLost(), 502, 14, "upstream reset"),
        (ResponseTimeout("x"), 504, 4, "response timeout"),
        (h2_types.DeadlineExceeded(), 504, 4, "response timeout"),
        (TimeoutError(), 504, 4, "response timeout"),
        (BadRequest("x"), 400, 13, "bad request"),
        (HeadTooLarge("x"), 431, 13, "request header too large"),
        (IdentityMismatch("x"), 502, 14, "peer identity mismatch"),
        (ssl.SSLCertVerificationError(), 502, 14, "peer identity mismatch"),
        (RuntimeError("bug"), 502, 2, "proxy error"),
    ],
)
def test_mapping(exc: BaseException, http: int, grpc: int, reason: str) -> None:
    response = rescue(exc)
    assert (response.http_status, response.grpc_status, response.reason) == (http, grpc, reason)


def test_foreign_connect_failed_maps_by_name() -> None:
    class ConnectFailed(Exception):  # noqa: N818 - the HTTP/2 pool's own class has this name
        pass

    assert rescue(ConnectFailed()).http_status == 502


def test_render() -> None:
    wire = render_http1(rescue(NoEndpoints("x")), close=False)
    head, _, body = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"mesh-proxy-error: no endpoints" in head
    assert b"content-length: %d" % len(body) in head
    assert b"connection: close" not in head
    assert b"connection: close" in render_http1(rescue(NoEndpoints("x")), close=True)
