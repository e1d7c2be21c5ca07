"""Every failure the proxy itself can produce, in one vocabulary for both protocols.

Each class is a reason a request could not be served as asked; `rescue.py` maps each one to the
response the client gets (an HTTP status, a gRPC status and the `mesh-proxy-error` reason). A class
is raised (or passed to an exchange's `fail`) where the failure is detected and answered in one place,
so no failure escapes as a traceback or a hung request. The message is the log detail, never sent.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Failure:
    """How a failure is answered: an HTTP status (plain requests) or grpc-status (gRPC), and a reason.

    `reason` is a fixed phrase (the `mesh-proxy-error` header and a metric label); `hint`, when the
    failure has one, names the fix in the response body and grpc-message."""

    http_status: int
    grpc_status: int
    reason: str
    hint: str = ""

    @property
    def text(self) -> str:
        """What the client reads: the reason, and the fix when there is one."""
        return f"{self.reason}: {self.hint}" if self.hint else self.reason


class ProxyFailure(Exception):
    """Base of the failures the proxy detects; the message is the log detail, `hint` the fix if any."""

    hint = ""


# -- the request itself ------------------------------------------------------------------------------
class BadRequest(ProxyFailure):
    """Malformed or refused framing (smuggling-shaped input, bad header, CONNECT/upgrade)."""


class HeadTooLarge(BadRequest):
    pass


class TooManyPipelined(ProxyFailure):
    """A client read too far ahead of its responses on one HTTP/1.1 connection."""


# -- where the request should go ---------------------------------------------------------------------
class UnknownService(ProxyFailure):
    """Neither a service of the mesh nor a host an Egress admits; `hint` says which it looks like."""

    def __init__(self, detail: str, hint: str = "") -> None:
        super().__init__(detail)
        self.hint = hint


class NotExposed(ProxyFailure):
    """The ingress exposes no route for this host and path."""


class NoEndpoints(ProxyFailure):
    pass


# -- reaching an endpoint: the request provably never reached an app ---------------------------------
class ConnectFailed(ProxyFailure):
    pass


class IdentityMismatch(ProxyFailure):
    pass


class PoolExhausted(ProxyFailure):
    """Too many requests already wait for a connection to the endpoint."""


# -- on the way back ----------------------------------------------------------------------------------
class UpstreamReset(ProxyFailure):
    """The upstream connection or stream broke while the request or response was on it."""


class UpstreamClosed(ProxyFailure):
    """The upstream closed before the response head."""


class ResponseTimeout(ProxyFailure):
    """No response within the route's timeout."""


class DeadlineExceeded(ResponseTimeout):
    """The request's own deadline (grpc-timeout or mesh-timeout) passed."""


# -- policies (each answered by the policy module that decides it) ------------------------------------
class Unauthorized(ProxyFailure):
    """An access policy selects the destination and admits no rule for this client."""


class FaultInjected(ProxyFailure):
    """A fault-injection policy aborted the request with a status of its choosing."""

    def __init__(self, detail: str, http_status: int = 503, grpc_status: int = 14) -> None:
        super().__init__(detail)
        self.failure = Failure(http_status, grpc_status, "fault injected")


class CircuitOpen(ProxyFailure):
    """Every endpoint of the destination is ejected (failures in a row, or a low success rate)."""


class RetryBudgetExhausted(ProxyFailure):
    """A retry was due but the destination's retry budget is spent."""


class LoadShed(ProxyFailure):
    """A queue the request would wait in is full."""
