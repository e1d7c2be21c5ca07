"""How long a request may take: its route's timeout, tightened by the deadline the client sent.

HTTP/1.1 requests without a route timeout wait RESPONSE_S for a response head; gRPC requests carry their
own deadline (`grpc-timeout`), which wins when it is shorter and is forwarded as the time that is left.
"""

from __future__ import annotations

RESPONSE_S = 10.0  # HTTP/1.1 response head deadline when the route sets none


def effective(route_timeout_s: float | None, asked_s: float | None) -> float | None:
    """The tighter of the route's timeout and the client's own deadline; None when neither is set."""
    if asked_s is None:
        return route_timeout_s
    if route_timeout_s is None:
        return asked_s
    return min(route_timeout_s, asked_s)
