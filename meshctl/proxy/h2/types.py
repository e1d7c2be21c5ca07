"""The contracts between an HTTP/2 exchange and the rest of the proxy (all structural, all sans-IO).

`Plan` is the request plan (plan.RequestPlan) as an exchange uses it, `Connector` finds it an upstream
stream slot, `UpstreamLink`/`UpstreamEnd` are an upstream connection as an exchange drives it, and
`Timers` is the part of an event loop it needs. Failures are `meshctl.proxy.errors` classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ngh2 import ErrorCode

from meshctl.proxy.errors import Failure
from meshctl.proxy.h2.headers import Header

if TYPE_CHECKING:
    from meshctl.proxy.h2.exchange import Exchange
    from meshctl.proxy.plan import TapStream


class Plan(Protocol):
    """What the runtime decided for one request; built by the policy when the request arrives."""

    failure: Failure | None  # the request cannot be routed at all
    timeout_s: float | None  # route timeout
    endpoint: Any  # pool key of the endpoint for the current attempt
    budget: Any  # the destination's retry budget when the route is retryable, else None
    delay_s: float  # an injected delay before the first attempt (0: none)
    set_cookie: bytes | None  # session affinity: a Set-Cookie the response carries

    def retry(self, status: int, grpc_status: int | None, latency_ms: float) -> bool:
        """Another attempt after a failure on a retryable route, while the retry budget allows."""
        ...

    def repick(self, exc: BaseException | None = None) -> bool:
        """Choose an endpoint for another attempt (avoiding this one when `exc` proves it unreachable)."""
        ...

    def finish(self, status: int, grpc_status: int | None, latency_ms: float) -> None:
        """The response the client got (metrics, balancer feedback). Called at most once."""
        ...

    def abandon(self) -> None:
        """The client went away before a response: release what `finish` would (no response recorded)."""
        ...

    def rescue(self, exc: BaseException) -> Failure: ...

    @property
    def tap(self) -> TapStream | None:
        """The tap of this request, when somebody taps it."""
        ...

    tap_trailers: list[Header] | None

    def tapped(self, request: bool, data: bytes) -> None: ...


class Connector(Protocol):
    def connect(self, exchange: Exchange) -> None:
        """Find a stream slot to `exchange.plan.endpoint`, then `exchange.attach(...)` or `.fail(...)`."""
        ...


class UpstreamEnd(Protocol):
    """The upstream half an exchange drives: an HTTP/2 client core, or an HTTP/1.1 connection."""

    streams: dict[int, int]  # stream ids still open

    def start(self, headers: list[Header], end_stream: bool, is_head: bool | None = None) -> int | None:
        """Open a stream; `is_head`: whether the request is a HEAD, when the caller knows (else read from it)."""
        ...

    def window(self, stream_id: int) -> int: ...

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> bool: ...

    def send_headers(self, stream_id: int, headers: list[Header], end_stream: bool = False) -> bool: ...

    def ack(self, stream_id: int, size: int) -> None: ...

    def reset(self, stream_id: int, error_code: int = ErrorCode.CANCEL) -> None: ...


class UpstreamLink(Protocol):
    """An upstream connection as exchanges see it (relay.UpstreamSession, http1.Http1Upstream)."""

    exchanges: dict[int, Exchange]
    blocked: set[Exchange]  # exchanges waiting for upstream window

    @property
    def side(self) -> UpstreamEnd: ...

    def forget(self, ex: Exchange) -> None: ...


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    """The part of an event loop the core needs (asyncio's loop fits; tests pass a fake)."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerHandle: ...
