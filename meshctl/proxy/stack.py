"""The request pipeline both protocols share: the ordered steps that turn a request head into a plan.

A `Stack` is built once per listener (inbound, outbound or ingress). For each request, `Stack.plan`
runs the steps below in this order — the one place the order is written down — and returns one
`RequestPlan` (plan.py: a `__slots__` object, the only per-request allocation of the pipeline). The protocol
paths (h1/exchange.py, h2/exchange.py) then drive the plan: `repick` for another attempt, `finish`
once with the response the client got, `abandon` when the client left, `rescue` for failures. The
plan reports the outcome to its observers in a fixed order: metrics, balancer, tap.

Steps:
  0. tracing  policy/tracing.py  ingress only: B3 and W3C trace headers, started or completed
  1. resolve  policy/resolve.py   the destination: the local service (inbound), an exposed host
                                  (ingress), or discovery (outbound)
     egress   policy/egress.py    outbound, no service matches: a host an Egress admits (else refused)
     split    policy/split.py     a TrafficSplit's apex: one of its backends (metrics keep the apex)
  2. route    policy/route.py     the profile route: name, timeout, response classification
  3. metrics  metrics/routes.py   the route's series, the request counted at once
     authz    policy/authz.py     inbound, once a TrafficTarget selects the workload: listed clients only
  4. fault    policy/fault.py     a FaultInjection for the destination: abort now, or delay the attempt
     deadline policy/deadline.py  the route timeout (each protocol adds the request's own deadline)
     retry    policy/retry.py     a retryable route: the request is deposited in its destination's budget
  5. breaker  policy/breaker.py   with failureAccrual: the endpoints not ejected (none left: circuit open)
     balance  policy/balance.py   an endpoint of the destination, by its profile's loadBalancer
              policy/affinity.py  session affinity: by the request's key (may set a cookie on the response)
  6. tap      observe/tap.py      when somebody taps: the request's start (one flag read otherwise)
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, Protocol

from meshctl.proxy.errors import (
    CircuitOpen,
    Failure,
    NoEndpoints,
    NotExposed,
    ProxyFailure,
    Unauthorized,
    UnknownService,
)
from meshctl.proxy.plan import Headers, RequestPlan, TapStream
from meshctl.proxy.policy import deadline, tracing
from meshctl.proxy.policy.balance import Balancer
from meshctl.proxy.policy.resolve import Destination
from meshctl.proxy.policy.route import DEFAULT, CompiledRoute
from meshctl.proxy.runtime import ProxyRuntime

if TYPE_CHECKING:
    from meshctl.metrics.routes import RouteStats

log = logging.getLogger("meshctl.proxy.stack")

# What a Stack remembers of an authority: its destination (inbound: None without a local service), route
# series and balancer (None inbound).
_Known = tuple[Destination | None, "RouteStats", Balancer | None]
KNOWN_LIMIT = 1024  # authorities whose plan a Stack remembers; forgotten all at once when full


class Source(Protocol):
    """The downstream connection a request came on (asked only when somebody taps)."""

    peer_identity: str | None

    def peer_address(self) -> str: ...


class Stack:
    """The pipeline of one listener. `kind` is "inbound", "outbound" or "ingress"."""

    __slots__ = ("runtime", "kind", "direction", "inbound", "ingress", "tls", "app", "response_s", "_router",
                 "_known")  # fmt: skip

    def __init__(self, runtime: ProxyRuntime, kind: str, tls: bool, app: Hashable = None) -> None:
        self.runtime = runtime
        self.kind = kind
        self.inbound = kind == "inbound"
        self.ingress = kind == "ingress"
        self.direction = "inbound" if self.inbound else "outbound"  # ingress counts as outbound in metrics
        self.tls = tls  # the downstream connection is mTLS (inbound)
        self.app = app  # the inbound pool key of the local app
        self.response_s = deadline.RESPONSE_S
        # Authority -> what steps 1-3 and the balancer lookup decided for it, while they cannot differ
        # per request (no profile, no split) and the router they came from is current: the common
        # request then costs one lookup instead of a resolve, a series lookup and a balancer lookup.
        self._router: object = None
        self._known: dict[str, _Known] = {}

    def plan(self, method: str, authority: str, path: str, headers: Headers, source: Source) -> RequestPlan:
        runtime = self.runtime
        known = self._known.get(authority) if runtime.router is self._router else None
        if known is None:
            return self._plan(method, authority, path, headers, source)
        # Steps 1-3 as decided for this authority before; what is left of 4-6 for a destination without
        # profile, split, fault or (inbound) access policy: the endpoint, and tap.
        dest, stats, balancer = known
        stats.requests += 1  # stats.on_new_request()
        stats.actual_requests += 1
        if balancer is None or dest is None:  # inbound
            plan = RequestPlan(self, stats, DEFAULT, dest, self.app)
        else:
            endpoint = balancer.take(dest.endpoints)
            plan = RequestPlan(self, stats, DEFAULT, dest, endpoint, balancer)
            if endpoint is None:
                plan.failure = plan.rescue(NoEndpoints(f"{dest.authority} has no ready endpoint"))
        tap = runtime.tap
        if tap is not None and tap.active:
            self._tap(plan, tap, method, authority, path, headers, source)
        return plan

    def _plan(self, method: str, authority: str, path: str, headers: Headers, source: Source) -> RequestPlan:
        runtime = self.runtime
        # 0. tracing (before tap sees the headers)
        if self.ingress:
            tracing.ensure(headers)
        # 1. resolve
        dest: Destination | None
        route: CompiledRoute | None
        if self.inbound:
            dest = runtime.local
        elif self.ingress:
            try:
                dest = runtime.resolve_ingress(authority, path)
            except NotExposed as exc:
                return self._refused(exc, method, authority, path, headers, source)
        else:
            dest = runtime.router.resolve(authority)  # runtime.resolve(), one call less per request
        # split, 2. route, 3. metrics
        if dest is not None:
            apex = dest.authority
            if dest.split is not None and not self.inbound:
                dest = dest.split.pick()
            profile = dest.profile  # dest.match() inlined: most destinations have no profile
            route = DEFAULT if profile is None else profile.match(method, path)
            stats = runtime.metrics.route(self.direction, apex, route.name, dest.egress is None, dest.namespace,
                                          dest.service)  # fmt: skip
            if profile is None and not self.ingress:
                self._learn(authority, apex, dest, stats)
        else:
            route = DEFAULT if self.inbound else None
            stats = runtime.metrics.route(self.direction, authority, DEFAULT.name, self.inbound, "", "")
            if self.inbound:
                self._learn(authority, authority, None, stats)
        stats.requests += 1  # stats.on_new_request(): the request and its first attempt
        stats.actual_requests += 1
        plan = RequestPlan(self, stats, route, dest)
        #    authz (inbound): once a TrafficTarget selects this workload, only the clients it lists
        authz = runtime.authz
        if authz is not None and self.inbound and authz.denies(source.peer_identity, method, path):
            who = source.peer_identity or "a client without a mesh identity"
            plan.failure = plan.rescue(Unauthorized(f"{who} may not {method} {path} ({authz.name})"))
            runtime.metrics.policy_event("authz_denied_total", dest.authority if dest else authority, "inbound",
                                         authz.name)  # fmt: skip
        # 4. fault
        if dest is not None and dest.fault is not None and not self.inbound:
            abort, plan.delay_s = dest.fault.decide(route.name if route is not None else DEFAULT.name)
            if abort is not None:
                plan.failure = plan.rescue(abort)
                runtime.metrics.policy_event("faults_injected_total", dest.authority)
            elif plan.delay_s:
                runtime.metrics.policy_event("delays_injected_total", dest.authority)
        #    deadline: the route's timeout is on the plan; the protocol applies it with the request's own
        #    retry: a retryable route's request counts toward its destination's budget
        if route is not None and route.is_retryable and dest is not None and not self.inbound:
            plan.budget = budget = runtime.retry_budget(dest)
            budget.deposit()
        # 5. breaker, balance
        if plan.failure is not None:
            pass  # answered before any endpoint is chosen
        elif self.inbound:
            plan.endpoint = self.app
        elif dest is None:
            plan.failure = plan.rescue(UnknownService(f"no service for authority {authority!r}",
                                                      runtime.router.refusal_hint(authority)))  # fmt: skip
        else:
            plan.balancer = balancer = runtime.balancer(dest)
            endpoints = dest.endpoints
            if dest.profile is not None and dest.profile.failure_accrual is not None:
                plan.breaker = breaker = runtime.breaker(dest)
                if breaker is not None:
                    endpoints = breaker.endpoints(endpoints)
            affine = balancer.affinity
            if affine is None:
                endpoint = balancer.pick(endpoints)
            else:
                endpoint, plan.set_cookie = affine.pick_keyed(headers, endpoints)
            if endpoint is None and endpoints is not dest.endpoints and dest.endpoints:
                plan.failure = plan.rescue(CircuitOpen(f"every endpoint of {dest.authority} is ejected"))
            elif endpoint is None:
                plan.failure = plan.rescue(NoEndpoints(f"{dest.authority} has no ready endpoint"))
            else:
                plan.endpoint = endpoint
                balancer.start(endpoint)
        # 6. tap
        tap = runtime.tap
        if tap is not None and tap.active:
            self._tap(plan, tap, method, authority, path, headers, source)
        return plan

    def _learn(self, authority: str, apex: str, dest: Destination | None, stats: RouteStats) -> None:
        """Remember what plan() decided for `authority` when the next request must get the same: no
        split or fault (outbound), no access policy (inbound), a series the registry keeps (a folded one
        counts its overflow on each request)."""
        runtime = self.runtime
        balancer: Balancer | None = None
        if self.inbound:
            if runtime.authz is not None or dest is not runtime.local:
                return
        elif dest is None or dest.split is not None or dest.fault is not None:
            return
        elif dest is not runtime.router.resolve(authority):
            return  # a split's backend, not what the authority resolves to
        else:
            balancer = runtime.balancer(dest)
            if balancer.affinity is not None:
                return
        if dest is None:
            labels = (authority, DEFAULT.name, True, "", "")
        else:
            labels = (apex, DEFAULT.name, dest.egress is None, dest.namespace, dest.service)
        if runtime.metrics.kept_route(self.direction, *labels) is not stats:
            return
        if runtime.router is not self._router or len(self._known) >= KNOWN_LIMIT:
            self._known.clear()
            self._router = runtime.router
        self._known[authority] = (dest, stats, balancer)

    def _refused(self, exc: ProxyFailure, method: str, authority: str, path: str, headers: Headers,
                 source: Source) -> RequestPlan:  # fmt: skip
        """A request the listener will not route at all: counted under its authority, answered with `exc`."""
        stats = self.runtime.metrics.route(self.direction, authority, DEFAULT.name, False, "", "")
        stats.on_new_request()
        plan = RequestPlan(self, stats, None, None)
        plan.failure = plan.rescue(exc)
        tap = self.runtime.tap
        if tap is not None and tap.active:
            self._tap(plan, tap, method, authority, path, headers, source)
        return plan

    def _tap(self, plan: RequestPlan, tap: TapHub, method: str, authority: str, path: str, headers: Headers,
             source: Source) -> None:  # fmt: skip
        endpoint = plan.endpoint
        route = plan.route.name if plan.route is not None else DEFAULT.name
        dst_identity = self.runtime.config.identity if self.inbound else getattr(endpoint, "identity", None)
        dst = f"{endpoint[0]}:{endpoint[1]}" if isinstance(endpoint, tuple) else str(endpoint or authority)
        plan.tap = tap.begin(self.direction, source.peer_address(), dst, source.peer_identity, dst_identity,
                             self.tls if self.inbound else dst_identity is not None, method, authority, path,
                             route, headers)  # fmt: skip

    def rescue(self, exc: BaseException) -> Failure:
        failure = self.runtime.rescue(exc)
        self.runtime.metrics.proxy_error(failure.reason)
        detail = _clean(str(exc) or type(exc).__name__)
        log.info("%s %s: %s (%s)", self.kind, failure.http_status, failure.reason, detail)
        return failure


class TapHub(Protocol):  # meshctl.proxy.observe.tap.TapHub
    active: bool

    def begin(self, direction: str, src: str, dst: str, src_identity: str | None, dst_identity: str | None,
              tls: bool, method: str, authority: str, path: str, route: str, headers: Headers) -> TapStream | None:
        ...  # fmt: skip


def _clean(text: str) -> str:
    """One log line per event: no CR/LF from peers."""
    return text.replace("\r", "\\r").replace("\n", "\\n")[:300]
