"""The one place a failure becomes a response: HTTP status, gRPC status and a short reason.

Every failure the proxy meets — no such service, no endpoint, refused connection, wrong peer
identity, timeout, malformed request — is an exception here (or one of the HTTP/2 path's own), and
`rescue` maps it to the response the client gets, so nothing escapes as a traceback or a hang.
"""

from __future__ import annotations

import ssl

from meshctl.proxy.h2.types import DeadlineExceeded, UpstreamLost
from meshctl.proxy.h2.types import Failure as SyntheticResponse
from meshctl.proxy.h2.types import UpstreamReset as H2StreamReset

__all__ = [
    "BadRequest",
    "ConnectFailed",
    "HeadTooLarge",
    "IdentityMismatch",
    "NoEndpoints",
    "ProxyFailure",
    "ResponseTimeout",
    "SyntheticResponse",
    "UnknownService",
    "UpstreamClosed",
    "UpstreamReset",
    "render_http1",
    "rescue",
]

# gRPC status codes used here
UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNKNOWN = 14, 4, 13, 2


class ProxyFailure(Exception):
    """Base of the failures the proxy itself detects; the message is the log detail."""


class UnknownService(ProxyFailure):
    pass


class NoEndpoints(ProxyFailure):
    pass


class ConnectFailed(ProxyFailure):
    pass


class IdentityMismatch(ProxyFailure):
    pass


class UpstreamReset(ProxyFailure):
    """The upstream connection broke while the request or response was on it."""


class UpstreamClosed(ProxyFailure):
    """The upstream closed before the response head."""


class ResponseTimeout(ProxyFailure):
    pass


class BadRequest(ProxyFailure):
    pass


class HeadTooLarge(BadRequest):
    pass


_UNKNOWN_SERVICE = SyntheticResponse(503, UNAVAILABLE, "unknown service")
_NO_ENDPOINTS = SyntheticResponse(503, UNAVAILABLE, "no endpoints")
_CONNECT = SyntheticResponse(502, UNAVAILABLE, "connect failed")
_IDENTITY = SyntheticResponse(502, UNAVAILABLE, "peer identity mismatch")
_RESET = SyntheticResponse(502, UNAVAILABLE, "upstream reset")
_CLOSED = SyntheticResponse(502, UNAVAILABLE, "upstream closed")
_TIMEOUT = SyntheticResponse(504, DEADLINE_EXCEEDED, "response timeout")
_BAD_REQUEST = SyntheticResponse(400, INTERNAL, "bad request")
_TOO_LARGE = SyntheticResponse(431, INTERNAL, "request header too large")
_INTERNAL = SyntheticResponse(502, UNKNOWN, "proxy error")

# Most specific first: a subclass must come before its base.
_TABLE: tuple[tuple[type[BaseException], SyntheticResponse], ...] = (
    (UnknownService, _UNKNOWN_SERVICE),
    (NoEndpoints, _NO_ENDPOINTS),
    (IdentityMismatch, _IDENTITY),
    (ssl.SSLCertVerificationError, _IDENTITY),
    (ConnectFailed, _CONNECT),
    (ConnectionRefusedError, _CONNECT),
    (UpstreamReset, _RESET),
    (H2StreamReset, _RESET),
    (UpstreamLost, _RESET),
    (UpstreamClosed, _CLOSED),
    (ConnectionError, _RESET),
    (ResponseTimeout, _TIMEOUT),
    (DeadlineExceeded, _TIMEOUT),
    (TimeoutError, _TIMEOUT),
    (HeadTooLarge, _TOO_LARGE),
    (BadRequest, _BAD_REQUEST),
    (LookupError, _NO_ENDPOINTS),
)


def rescue(exc: BaseException) -> SyntheticResponse:
    """The response for a failure. Failures from other modules map by their class names (ConnectFailed ...)."""
    for kind, response in _TABLE:
        if isinstance(exc, kind):
            return response
    by_name = _BY_NAME.get(type(exc).__name__)
    return by_name if by_name is not None else _INTERNAL


# The HTTP/2 pool raises its own ConnectFailed / PoolExhausted; matching by name keeps this module
# free of the pool's imports (and of an import cycle).
_BY_NAME = {"ConnectFailed": _CONNECT, "PoolExhausted": SyntheticResponse(503, UNAVAILABLE, "pool exhausted")}

_REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large", 502: b"Bad Gateway",
            503: b"Service Unavailable", 504: b"Gateway Timeout"}  # fmt: skip


def render_http1(response: SyntheticResponse, *, close: bool) -> bytes:
    """The response as HTTP/1.1 bytes, with `mesh-proxy-error` and a short text body."""
    body = response.reason.encode("ascii", "replace") + b"\n"
    reason = _REASONS.get(response.http_status, b"Error")
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (response.http_status, reason),
            b"mesh-proxy-error: %s\r\n" % response.reason.encode("ascii", "replace"),
            b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n" if close else b"\r\n",
            body,
        )
    )
