"""How long a request may take: its route's timeout, tightened by the deadline the client sent.

HTTP/1.1 requests without a route timeout wait RESPONSE_S for a response head. A client sets its own
deadline with `mesh-timeout` (HTTP/1.1 and HTTP/2: "250ms", "1.5s", "2m") or, for gRPC, `grpc-timeout`;
the tighter of it and the route's timeout wins, retries included, and every hop forwards the header
as the time that is left, so the app and the proxies after it give up when the caller has.
"""

from __future__ import annotations

RESPONSE_S = 10.0  # HTTP/1.1 response head deadline when the route sets none
HEADER = b"mesh-timeout"
MAX_S = 100_000_000.0  # as grpc-timeout's largest value: longer asks are not deadlines
_UNITS = {b"ms": 0.001, b"s": 1.0, b"m": 60.0}


def effective(route_timeout_s: float | None, asked_s: float | None) -> float | None:
    """The tighter of the route's timeout and the client's own deadline; None when neither is set."""
    if asked_s is None:
        return route_timeout_s
    if route_timeout_s is None:
        return asked_s
    return min(route_timeout_s, asked_s)


def parse(value: bytes) -> float | None:
    """Seconds from a `mesh-timeout` value ("250ms", "1.5s", "2m"), None when it is not one."""
    value = value.strip().lower()
    unit = 2 if value.endswith(b"ms") else 1
    scale = _UNITS.get(value[-unit:])
    number = value[:-unit]
    if scale is None or not 1 <= len(number) <= 12:
        return None
    whole, _, fraction = number.partition(b".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        return None
    return min(float(number) * scale, MAX_S)


def format_left(seconds: float) -> bytes:
    """The time that is left, as a `mesh-timeout` value in whole milliseconds (rounded up, at least 1)."""
    return b"%dms" % max(1, int(seconds * 1000.0 + 0.999))
