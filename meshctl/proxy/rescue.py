"""The one place a failure becomes a response: HTTP status, gRPC status and a short reason.

Every failure class in `errors.py` has a row here; the OS and TLS errors that reach an exchange map
onto the same rows. Anything else is a bug in the proxy and answers 502 "proxy error" instead of
escaping as a traceback or a hang.
"""

from __future__ import annotations

import dataclasses
import ssl

from meshctl.proxy import errors as e
from meshctl.proxy.errors import Failure

# gRPC status codes used here
UNKNOWN, DEADLINE_EXCEEDED, NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED = 2, 4, 5, 7, 8
UNIMPLEMENTED, INTERNAL, UNAVAILABLE = 12, 13, 14

PROXY_ERROR = Failure(502, UNKNOWN, "proxy error")

# Most specific first: a subclass must come before its base.
TABLE: tuple[tuple[type[BaseException], Failure], ...] = (
    (e.HeadTooLarge, Failure(431, INTERNAL, "request header too large")),
    (e.BadRequest, Failure(400, INTERNAL, "bad request")),
    (e.TooManyPipelined, Failure(503, RESOURCE_EXHAUSTED, "too many pipelined requests")),
    (e.UnknownService, Failure(503, UNAVAILABLE, "unknown service")),
    (e.NotExposed, Failure(404, NOT_FOUND, "not exposed by the ingress")),
    (e.NoEndpoints, Failure(503, UNAVAILABLE, "no endpoints")),
    (e.IdentityMismatch, Failure(502, UNAVAILABLE, "peer identity mismatch")),
    (ssl.SSLCertVerificationError, Failure(502, UNAVAILABLE, "peer identity mismatch")),
    (e.ConnectFailed, Failure(502, UNAVAILABLE, "connect failed")),
    (ConnectionRefusedError, Failure(502, UNAVAILABLE, "connect failed")),
    (e.PoolExhausted, Failure(503, UNAVAILABLE, "pool exhausted")),
    (e.UpstreamReset, Failure(502, UNAVAILABLE, "upstream reset")),
    (e.UpstreamClosed, Failure(502, UNAVAILABLE, "upstream closed")),
    (ConnectionError, Failure(502, UNAVAILABLE, "upstream reset")),
    (e.DeadlineExceeded, Failure(504, DEADLINE_EXCEEDED, "deadline exceeded")),
    (e.ResponseTimeout, Failure(504, DEADLINE_EXCEEDED, "response timeout")),
    (TimeoutError, Failure(504, DEADLINE_EXCEEDED, "response timeout")),
    (e.Unauthorized, Failure(403, PERMISSION_DENIED, "unauthorized")),
    (e.CircuitOpen, Failure(503, UNAVAILABLE, "circuit open")),
    (e.RetryBudgetExhausted, Failure(503, UNAVAILABLE, "retry budget exhausted")),
    (e.LoadShed, Failure(503, UNAVAILABLE, "load shed")),
)

PROXY_ERROR_HEADER = b"mesh-proxy-error"
# A peer proxy's reasons that prove the request never reached its app: another endpoint may take it.
NOT_DELIVERED = frozenset((b"connect failed", b"pool exhausted", b"load shed"))

# Failures that prove the request never reached an app: another endpoint may be tried.
NEVER_SENT: tuple[type[BaseException], ...] = (
    e.ConnectFailed, e.IdentityMismatch, ssl.SSLCertVerificationError, ConnectionRefusedError,
)  # fmt: skip


def rescue(exc: BaseException) -> Failure:
    """The response for a failure."""
    if isinstance(exc, e.FaultInjected):
        return exc.failure
    for kind, response in TABLE:
        if isinstance(exc, kind):
            hint = getattr(exc, "hint", "")
            return dataclasses.replace(response, hint=hint) if hint else response
    return PROXY_ERROR


_REASONS = {400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found", 431: b"Request Header Fields Too Large",
            502: b"Bad Gateway", 503: b"Service Unavailable", 504: b"Gateway Timeout"}  # fmt: skip


def render_http1(response: Failure, *, close: bool) -> bytes:
    """The response as HTTP/1.1 bytes, with `mesh-proxy-error` and a short text body."""
    body = response.text.encode("ascii", "replace") + b"\n"
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
