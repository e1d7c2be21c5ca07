"""One request's plan: what the pipeline (stack.py) decided for it, driven by the protocol paths and
reporting the request's outcome exactly once, in a fixed order: metrics, balancer, tap."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Protocol

from meshctl.proxy.errors import Failure
from meshctl.proxy.policy.balance import Balancer
from meshctl.proxy.policy.breaker import Breaker
from meshctl.proxy.policy.resolve import Destination
from meshctl.proxy.policy.retry import Budget
from meshctl.proxy.policy.route import CompiledRoute
from meshctl.proxy.rescue import NEVER_SENT

if TYPE_CHECKING:
    from meshctl.metrics.routes import RouteStats
    from meshctl.proxy.stack import Stack

Headers = list[tuple[bytes, bytes]]
MAX_ATTEMPTS = 3  # the first try and up to two more (never-delivered requests, or retryable routes)


class TapStream(Protocol):  # meshctl.proxy.observe.tap.TapStream
    def response(self, status: int, headers: Headers) -> None: ...

    def body(self, request: bool, data: bytes) -> None: ...

    def end(self, grpc_status: int | None, failure: str | None, request_bytes: int, response_bytes: int,
            trailers: Headers | None) -> None: ...  # fmt: skip


def default_failure(status: int, grpc_status: int | None) -> bool:
    """Without a route: 5xx, or a gRPC status other than OK."""
    return grpc_status != 0 if grpc_status is not None else status >= 500


class RequestPlan:
    """What the pipeline decided for one request, and where its outcome is reported (exactly once)."""

    __slots__ = ("stack", "failure", "route", "timeout_s", "dest", "endpoint", "stats", "balancer", "tap",
                 "attempts", "reported", "failed_reason", "tap_bytes", "tap_trailers", "budget", "breaker",
                 "delay_s", "set_cookie")  # fmt: skip

    def __init__(self, stack: Stack, stats: RouteStats, route: CompiledRoute | None, dest: Destination | None,
                 endpoint: Hashable = None, balancer: Balancer | None = None) -> None:  # fmt: skip
        self.stack = stack
        self.stats = stats
        self.route = route
        self.dest = dest
        self.timeout_s = route.timeout_s if route is not None else None
        self.failure: Failure | None = None
        self.endpoint = endpoint
        self.balancer = balancer
        self.tap: TapStream | None = None
        self.attempts = 1
        self.reported = False
        self.failed_reason: str | None = None  # the proxy's reason when it answered with a failure
        self.tap_bytes: list[int] | None = None  # request, response body bytes: made on the first tapped chunk
        self.tap_trailers: Headers | None = None
        self.budget: Budget | None = None  # set on retryable routes only: the destination's retry budget
        self.breaker: Breaker | None = None  # set when the destination's profile asks for circuit breaking
        self.delay_s = 0.0  # an injected delay the protocol waits before the first attempt
        self.set_cookie: bytes | None = None  # session affinity: a Set-Cookie value the response carries

    def repick(self, exc: BaseException | None = None) -> bool:
        """Another endpoint for a new attempt after one that never reached an app; False when none is left.

        When `exc` proves the endpoint was unreachable, the balancer avoids it from now on. The attempt
        that ended counts as an actual response once another one starts; otherwise `finish` counts it.
        """
        balancer, dest = self.balancer, self.dest
        if balancer is None or dest is None or self.attempts >= MAX_ATTEMPTS:
            return False
        previous = self.endpoint
        if previous is not None:
            balancer.done(previous, 0.0, False, unreachable=isinstance(exc, NEVER_SENT))
            self._failed(previous)
        self.endpoint = endpoint = balancer.pick(self._candidates(dest))
        if endpoint is None or endpoint == previous:
            if endpoint is not None:
                balancer.start(endpoint)
                balancer.done(endpoint, 0.0, False)  # released at once: no attempt is made
            self.endpoint = None
            return False
        status = self.stack.runtime.rescue(exc).http_status if exc is not None else 503
        self.stats.on_actual_response(status, None, 0.0, True)
        balancer.start(endpoint)
        self.attempts += 1
        self.stats.on_actual_request()
        return True

    def retry(self, status: int, grpc_status: int | None, latency_ms: float) -> bool:
        """Another attempt after a failed one on a retryable route, while the destination's budget allows.

        Callers check `plan.budget` first and that the whole request can still be sent again. The next
        endpoint may be the same. The ended attempt counts as an actual response once another one starts;
        otherwise (every endpoint ejected meanwhile) it is the answer and `finish` counts it.
        """
        budget, balancer, dest, route = self.budget, self.balancer, self.dest, self.route
        if budget is None or balancer is None or dest is None or route is None or self.attempts >= MAX_ATTEMPTS:
            return False
        if not route.is_failure(status, grpc_status):
            return False
        if not budget.withdraw():
            self.stack.runtime.metrics.policy_event("retry_budget_exhausted_total", dest.authority)
            return False
        if self.endpoint is not None:
            balancer.done(self.endpoint, latency_ms / 1000.0, False)
            self._failed(self.endpoint)
        self.endpoint = endpoint = balancer.pick(self._candidates(dest))
        if endpoint is None:  # every endpoint is ejected now: the failure is the answer
            return False
        self.stats.on_actual_response(status, grpc_status, latency_ms, True)
        balancer.start(endpoint)
        self.attempts += 1
        self.stats.on_actual_request()
        return True

    def _candidates(self, dest: Destination) -> tuple[Hashable, ...]:
        breaker = self.breaker
        return dest.endpoints if breaker is None else breaker.endpoints(dest.endpoints)

    def _failed(self, endpoint: Hashable) -> None:
        """A failed attempt, for the circuit breaker."""
        breaker = self.breaker
        if breaker is not None and breaker.outcome(endpoint, True) and self.dest is not None:
            self.stack.runtime.metrics.policy_event("endpoint_ejections_total", self.dest.authority)

    def finish(self, status: int, grpc_status: int | None, latency_ms: float, failed: bool | None = None) -> None:
        """The response the client got (after any retries); latency is time to the response head.

        `failed` overrides the route's classification (a response cut off after its head)."""
        if self.reported:
            return
        self.reported = True
        route = self.route
        if failed is None:
            if route is not None and not route.classes and grpc_status is None:
                failed = status >= 500  # what is_failure() says for a route without response classes
            else:
                failed = route.is_failure(status, grpc_status) if route else default_failure(status, grpc_status)
        self.stats.on_final_response(status, grpc_status, latency_ms, failed)
        balancer = self.balancer
        if balancer is not None and self.endpoint is not None:
            balancer.done(self.endpoint, latency_ms / 1000.0, not failed)
            if self.breaker is not None:
                if failed:
                    self._failed(self.endpoint)
                else:
                    self.breaker.outcome(self.endpoint, False)
        tap = self.tap
        if tap is not None:
            self.tap = None
            sizes = self.tap_bytes or (0, 0)
            tap.end(grpc_status, self.failed_reason, sizes[0], sizes[1], self.tap_trailers)

    def tapped(self, request: bool, data: bytes) -> None:
        """A body chunk of a tapped request (callers check `plan.tap` first: untapped requests pay nothing)."""
        tap = self.tap
        if tap is not None:
            sizes = self.tap_bytes
            if sizes is None:
                sizes = self.tap_bytes = [0, 0]
            sizes[0 if request else 1] += len(data)
            tap.body(request, data)

    def abandon(self) -> None:
        """The client went away before a response: release what `finish` would (no response recorded)."""
        if self.reported:
            return
        self.reported = True
        if self.balancer is not None and self.endpoint is not None:
            self.balancer.done(self.endpoint, 0.0, False)
        tap = self.tap
        if tap is not None:
            self.tap = None
            sizes = self.tap_bytes or (0, 0)
            tap.end(None, "client went away", sizes[0], sizes[1], None)

    def rescue(self, exc: BaseException) -> Failure:
        """The response for a failure of this request, counted and logged once."""
        failure = self.stack.rescue(exc)
        self.failed_reason = failure.reason
        return failure
