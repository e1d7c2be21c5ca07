"""Every failure maps to one status, gRPC status and reason."""

from __future__ import annotations

import ssl

import pytest

from meshctl.proxy import errors
from meshctl.proxy.errors import (
    BadRequest,
    ConnectFailed,
    HeadTooLarge,
    IdentityMismatch,
    NoEndpoints,
    ResponseTimeout,
    UnknownService,
    UpstreamClosed,
    UpstreamReset,
)
from meshctl.proxy.rescue import TABLE, render_http1, rescue


@pytest.mark.parametrize(
    ("exc", "http", "grpc", "reason"),
    [
        (UnknownService("x"), 503, 14, "unknown service"),
        (NoEndpoints("x"), 503, 14, "no endpoints"),
        (ConnectFailed("x"), 502, 14, "connect failed"),
        (ConnectionRefusedError(), 502, 14, "connect failed"),
        (UpstreamReset("x"), 502, 14, "upstream reset"),
        (UpstreamClosed("x"), 502, 14, "upstream closed"),
        (ResponseTimeout("x"), 504, 4, "response timeout"),
        (errors.DeadlineExceeded(), 504, 4, "deadline exceeded"),
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


def test_every_failure_class_has_its_own_row() -> None:
    """No failure class falls through to "proxy error": each one is answered for what it is."""
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ProxyFailure)]
    mapped = {kind for kind, _ in TABLE}
    missing = [c.__name__ for c in classes if c is not errors.ProxyFailure and c is not errors.FaultInjected
               and not any(issubclass(c, kind) for kind in mapped)]  # fmt: skip
    assert not missing
    assert rescue(errors.FaultInjected("x", 418, 3)).http_status == 418
    assert rescue(errors.Unauthorized("x")).grpc_status == 7
    assert rescue(errors.NotExposed("x")).http_status == 404


def test_render() -> None:
    wire = render_http1(rescue(NoEndpoints("x")), close=False)
    head, _, body = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"mesh-proxy-error: no endpoints" in head
    assert b"content-length: %d" % len(body) in head
    assert b"connection: close" not in head
    assert b"connection: close" in render_http1(rescue(NoEndpoints("x")), close=True)
