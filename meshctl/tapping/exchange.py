"""One tapped request: its request, response and end events (and body previews) paired by id."""

from __future__ import annotations

from dataclasses import dataclass

from meshctl.tapping.events import BodyChunk, RequestInit, ResponseEnd, ResponseInit

# gRPC codes that mean the server failed (as Linkerd's top counts success)
GRPC_FAILURES = frozenset({2, 4, 13, 14, 15})  # Unknown, DeadlineExceeded, Internal, Unavailable, DataLoss
TRACE_HEADERS = ("traceparent", "x-b3-traceid", "b3")


@dataclass(slots=True, eq=False)
class Exchange:
    instance: str
    id: int
    seq: int  # arrival order in the store
    request: RequestInit | None = None
    response: ResponseInit | None = None
    end: ResponseEnd | None = None
    request_body: BodyChunk | None = None
    response_body: BodyChunk | None = None

    @property
    def complete(self) -> bool:
        return self.end is not None

    @property
    def status(self) -> int | None:
        return self.response.http_status if self.response is not None else None

    @property
    def grpc_status(self) -> int | None:
        return self.end.grpc_status if self.end is not None else None

    @property
    def latency_us(self) -> int | None:
        """Total latency (request start to response end); None while in flight."""
        return self.end.since_request_init_us if self.end is not None else None

    @property
    def success(self) -> bool | None:
        """Linkerd's rule: a response below 500, no failing gRPC status, no failure; None while in flight."""
        if self.end is None:
            return None
        if self.end.failure or not self.end.response_started:
            return False
        if self.status is not None and self.status >= 500:
            return False
        return self.end.grpc_status not in GRPC_FAILURES

    @property
    def trace_id(self) -> str | None:
        return trace_id(self.request.headers) if self.request is not None else None


def trace_id(headers: tuple[tuple[str, str], ...]) -> str | None:
    """The trace id of W3C traceparent, B3 multi-header or B3 single-header propagation."""
    for name, value in headers:
        if name == "traceparent":
            parts = value.split("-")
            if len(parts) >= 4 and len(parts[1]) == 32:
                return parts[1]
        elif name == "x-b3-traceid" and value:
            return value.strip()
        elif name == "b3" and value and value not in ("0", "1", "d"):
            return value.split("-", 1)[0]
    return None
