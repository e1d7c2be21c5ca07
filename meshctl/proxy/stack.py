"""The runtime's decisions for one HTTP/2 request, in the shape the exchange needs (`Plan`).

`RuntimePolicy` routes each request of a downstream connection: outbound (and ingress) through the
router and the destination's balancer to a peer proxy, inbound to the local app. The `RoutePlan` it
makes holds the route's metrics series (`on_request` counted at once), timeout and response
classification and the picked endpoint; it reports the outcome exactly once — to the metrics and the
balancer — and maps failures to responses through the runtime's single `rescue`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from meshctl.proxy.h2.headers import RequestHead
from meshctl.proxy.h2.types import Failure
from meshctl.proxy.policy.resolve import Destination
from meshctl.proxy.policy.route import DEFAULT
from meshctl.proxy.rescue import NoEndpoints, UnknownService
from meshctl.proxy.runtime import ProxyRuntime

log = logging.getLogger("meshctl.proxy.h2")


class RouteStats(Protocol):  # meshctl.metrics.registry.RouteStats
    def on_request(self) -> None: ...

    def on_response(self, status_code: int, grpc_status: int | None, latency_ms: float, failure: bool) -> None: ...


class Route(Protocol):  # meshctl.proxy.policy.route.CompiledRoute
    @property
    def name(self) -> str: ...

    @property
    def timeout_s(self) -> float | None: ...

    def is_failure(self, status: int, grpc_status: int | None = None) -> bool: ...


Observe = Callable[[object, float, bool], None]  # (endpoint, latency_ms, success)


def default_failure(status: int, grpc_status: int | None) -> bool:
    """Without a route: 5xx, or a gRPC status other than OK."""
    return grpc_status != 0 if grpc_status is not None else status >= 500


class RoutePlan:
    __slots__ = ("failure", "timeout_s", "endpoint", "_stats", "_route", "_pick", "_observe", "_rescue",
                 "_reported")  # fmt: skip

    def __init__(
        self,
        stats: RouteStats,
        rescue: Callable[[BaseException], Failure],
        route: Route | None = None,
        pick: Callable[[], object] | None = None,
        observe: Observe | None = None,
        failure: Failure | None = None,
    ) -> None:
        self._stats = stats
        self._rescue = rescue
        self._route = route
        self._pick = pick
        self._observe = observe
        self._reported = False
        self.timeout_s = route.timeout_s if route is not None else None
        self.endpoint: object = None
        self.failure = failure
        stats.on_request()
        if failure is None and pick is not None and not self.repick() and self.failure is None:
            self.failure = rescue(LookupError("no endpoint available"))

    def repick(self) -> bool:
        if self._pick is None:
            return False
        if self.endpoint is not None and self._observe is not None:
            self._observe(self.endpoint, 0.0, False)  # the attempt there is over (refused, not answered)
        try:
            self.endpoint = self._pick()
        except Exception as exc:
            self.failure = self._rescue(exc)
            return False
        return self.endpoint is not None

    def finish(self, status: int, grpc_status: int | None, latency_ms: float) -> None:
        if self._reported:
            return
        self._reported = True
        route = self._route
        failed = route.is_failure(status, grpc_status) if route is not None else default_failure(status, grpc_status)
        self._stats.on_response(status, grpc_status, latency_ms, failed)
        if self._observe is not None and self.endpoint is not None:
            self._observe(self.endpoint, latency_ms, not failed)

    def abandon(self) -> None:
        """The client cancelled: the balancer still learns the request is over (not as a success)."""
        if not self._reported:
            self._reported = True
            if self._observe is not None and self.endpoint is not None:
                self._observe(self.endpoint, 0.0, False)

    def rescue(self, exc: BaseException) -> Failure:
        return self._rescue(exc)


class RuntimePolicy:
    """The Policy of one downstream connection: `direction` is "inbound", "outbound" or "ingress"."""

    __slots__ = ("runtime", "direction", "tls", "app", "_ingress")

    def __init__(self, runtime: ProxyRuntime, direction: str, tls: bool, app: object | None = None) -> None:
        self.runtime = runtime
        self._ingress = direction == "ingress"
        self.direction = "inbound" if direction == "inbound" else "outbound"  # ingress counts as outbound
        self.tls = tls
        self.app = app  # the inbound pool key of the local app

    def rescue(self, exc: BaseException) -> Failure:
        failure = self.runtime.rescue(exc)
        self.runtime.metrics.proxy_error(failure.reason)
        log.debug("h2 %s request failed: %s (%s)", self.direction, failure.reason, exc)
        return failure

    def plan(self, head: RequestHead) -> RoutePlan:
        runtime = self.runtime
        metrics = runtime.metrics
        authority = head.authority.decode("latin-1")
        method, path = head.method.decode("latin-1"), head.path.decode("latin-1")
        if self.direction == "inbound":
            local = runtime.local
            route = local.match(method, path) if local is not None else DEFAULT
            stats = metrics.route(
                "inbound", local.authority if local is not None else authority, route.name, self.tls,
                runtime.config.namespace, local.service if local is not None else "",
            )  # fmt: skip
            app = self.app
            return RoutePlan(stats, self.rescue, route, pick=lambda: app)
        dest = runtime.resolve_ingress(authority) if self._ingress else runtime.resolve(authority)
        if dest is None:
            stats = metrics.route("outbound", authority, DEFAULT.name, False, "", "")
            return RoutePlan(stats, self.rescue, failure=self.rescue(UnknownService(authority)))
        route = dest.match(method, path)
        stats = metrics.route("outbound", dest.authority, route.name, True, dest.namespace, dest.service)
        pick, observe = _balanced(runtime, dest)
        return RoutePlan(stats, self.rescue, route, pick, observe)


def _balanced(runtime: ProxyRuntime, dest: Destination) -> tuple[Callable[[], object], Observe]:
    balancer = runtime.balancer(dest)

    def pick() -> object:
        endpoint = balancer.pick(dest.endpoints)
        if endpoint is None:
            raise NoEndpoints(dest.authority)
        balancer.start(endpoint)
        return endpoint

    def observe(endpoint: object, latency_ms: float, ok: bool) -> None:
        balancer.done(endpoint, latency_ms / 1000.0, ok)

    return pick, observe
