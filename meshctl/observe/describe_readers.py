"""The readers of `meshctl describe`: one function per concern, each turning the resources that apply to a
service (or to the workload) into findings with their origin. They follow the proxies' own rules
(meshctl/proxy/policy/*): a ServiceProfile is found by the service's FQDN, a TrafficSplit by its apex or
backends, a FaultInjection by its service, a TrafficTarget by its destination's service account.

A new kind or field is one reader here, one row in READERS.
"""

from __future__ import annotations

from typing import Any

from meshctl.observe.describe import DEFAULT, Finding, ReaderDef, Resources, Scope
from meshctl.resources.access import HTTPMatch, HTTPRouteGroupSpec, TrafficTargetSpec
from meshctl.resources.egress import EgressSpec
from meshctl.resources.fault_injection import FaultInjectionSpec
from meshctl.resources.mesh_ingress import MeshIngressSpec
from meshctl.resources.profile_conditions import RequestMatch, ResponseMatch
from meshctl.resources.profile_schema import DEFAULT_ROUTE_TIMEOUT_S
from meshctl.resources.service_profile import (
    DEFAULT_RETRY_BUDGET,
    DEFAULT_ROUTE,
    RetryBudget,
    ServiceProfileSpec,
)
from meshctl.resources.traffic_split import TrafficSplitSpec

NO_ROUTE_TIMEOUT = "none: HTTP/1.1 waits 10s for a response head; a client's mesh-timeout or grpc-timeout applies"
DEFAULT_BALANCER = "peak-EWMA, power of two choices"


def _seconds(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


def request_text(match: RequestMatch) -> str:
    parts = []
    if match.method is not None:
        parts.append(match.method)
    if match.path_regex is not None:
        parts.append(match.path_regex)
    if match.all_of is not None:
        parts.append("all of (" + "; ".join(request_text(m) for m in match.all_of) + ")")
    if match.any_of is not None:
        parts.append("any of (" + "; ".join(request_text(m) for m in match.any_of) + ")")
    if match.not_ is not None:
        parts.append(f"not ({request_text(match.not_)})")
    return " ".join(parts) or "every request"


def _response_text(match: ResponseMatch) -> str:
    if match.status is not None:
        low, high = match.status.min, match.status.max
        return f"{low}" if low == high else f"{low}-{high}"
    if match.not_ is not None:
        return f"not {_response_text(match.not_)}"
    inner = match.all_of or match.any_of or ()
    return ("all" if match.all_of else "any") + " of (" + ", ".join(_response_text(m) for m in inner) + ")"


# --- per service --------------------------------------------------------------------------------------


def routes(scope: Scope, resources: Resources) -> list[Finding]:
    """Routes with their timeouts, retries and failure classes (ServiceProfile), and [DEFAULT]."""
    assert scope.service is not None
    profile = resources.profile(scope.service, scope.namespace)
    if profile is None:
        return [
            Finding("route", DEFAULT_ROUTE, "every request: the service has no ServiceProfile"),
            Finding("timeout", DEFAULT_ROUTE, NO_ROUTE_TIMEOUT),
            Finding("retries", DEFAULT_ROUTE, "only requests that never reached an app, on another endpoint"),
        ]
    spec: ServiceProfileSpec = profile.spec  # type: ignore[assignment]
    origin = resources.origin(profile)
    found: list[Finding] = []
    for route in spec.routes:
        failures = [_response_text(c.condition) for c in route.response_classes if c.is_failure]
        condition = request_text(route.condition)
        found.append(Finding("route", route.name, condition + (f"; failure: {', '.join(failures)}" if failures else ""),
                             origin, {"condition": condition, "failure": failures or ["5xx"]}))  # fmt: skip
    found.append(Finding("route", DEFAULT_ROUTE, "requests no route matches", origin))
    for route in spec.routes:
        if route.timeout is not None:
            found.append(Finding("timeout", route.name, route.timeout, origin, {"seconds": route.timeout_s}))
        else:
            text = f"{_seconds(DEFAULT_ROUTE_TIMEOUT_S)} (a route without timeout)"
            found.append(Finding("timeout", route.name, text, DEFAULT, {"seconds": DEFAULT_ROUTE_TIMEOUT_S}))
    found.append(Finding("timeout", DEFAULT_ROUTE, NO_ROUTE_TIMEOUT))
    for route in spec.routes:
        if route.is_retryable:
            found.append(Finding("retries", route.name, "retried after a failure, within the retry budget", origin,
                                 {"retryable": True}))  # fmt: skip
        else:
            found.append(Finding("retries", route.name, "only if the request never reached an app", DEFAULT,
                                 {"retryable": False}))  # fmt: skip
    return found


def retry_budget(scope: Scope, resources: Resources) -> list[Finding]:
    assert scope.service is not None
    profile = resources.profile(scope.service, scope.namespace)
    spec: ServiceProfileSpec | None = profile.spec if profile else None  # type: ignore[assignment]
    budget: RetryBudget = (spec.retry_budget if spec else None) or DEFAULT_RETRY_BUDGET
    origin = resources.origin(profile) if profile is not None and spec and spec.retry_budget else DEFAULT
    retryable = bool(spec and any(r.is_retryable for r in spec.routes))
    text = (f"{budget.retry_ratio * 100:g}% of the requests + {budget.min_retries_per_second}/s over {budget.ttl}"
            + ("" if retryable else " (no route is retryable: unused)"))  # fmt: skip
    detail = {"retryRatio": budget.retry_ratio, "minRetriesPerSecond": budget.min_retries_per_second,
              "ttl": budget.ttl, "used": retryable}  # fmt: skip
    return [Finding("retry budget", scope.service, text, origin, detail)]


def splits(scope: Scope, resources: Resources) -> list[Finding]:
    """TrafficSplits whose apex is the service (its requests go to backends), or that name it as a backend."""
    assert scope.service is not None
    found = []
    for split in resources.of_kind("TrafficSplit", scope.namespace):
        spec: TrafficSplitSpec = split.spec  # type: ignore[assignment]
        total = sum(b.weight for b in spec.backends) or 1
        shares = {b.service: f"{b.weight * 100 / total:.4g}%" for b in spec.backends}
        detail = {"apex": spec.service, "backends": {b.service: b.weight for b in spec.backends}}
        if spec.service == scope.service:
            text = "requests to it go to " + ", ".join(f"{name} {share}" for name, share in shares.items())
            found.append(Finding("split", f"apex {spec.service}", text, resources.origin(split), detail))
        elif scope.service in shares:
            text = (f"backend: gets {shares[scope.service]} of the requests to {spec.service}, "
                    f"under the ServiceProfile and faults of {spec.service}")  # fmt: skip
            found.append(Finding("split", f"backend of {spec.service}", text, resources.origin(split), detail))
    return found


def faults(scope: Scope, resources: Resources) -> list[Finding]:
    assert scope.service is not None
    found = []
    for fault in resources.of_kind("FaultInjection", scope.namespace):
        spec: FaultInjectionSpec = fault.spec  # type: ignore[assignment]
        if spec.service != scope.service:
            continue
        subject = ", ".join(spec.routes) if spec.routes is not None else "every route"
        parts: list[str] = []
        detail: dict[str, Any] = {}
        if spec.abort is not None:
            parts.append(f"abort {spec.abort.percent:g}% with {spec.abort.http_status} (gRPC {spec.abort.grpc_status})")
            detail["abort"] = {"percent": spec.abort.percent, "httpStatus": spec.abort.http_status,
                               "grpcStatus": spec.abort.grpc_status}  # fmt: skip
        if spec.delay is not None:
            parts.append(f"delay {spec.delay.percent:g}% by {spec.delay.fixed_delay}")
            detail["delay"] = {"percent": spec.delay.percent, "fixedDelay": spec.delay.fixed_delay}
        found.append(Finding("fault", subject, ", ".join(parts), resources.origin(fault), detail))
    return found


def failure_accrual(scope: Scope, resources: Resources) -> list[Finding]:
    assert scope.service is not None
    profile = resources.profile(scope.service, scope.namespace)
    spec: ServiceProfileSpec | None = profile.spec if profile else None  # type: ignore[assignment]
    accrual = spec.failure_accrual if spec else None
    if profile is None or accrual is None:
        return [Finding("failure accrual", "endpoints", "none: endpoints are not ejected for failed responses "
                                                        "(an unreachable one is still avoided)")]  # fmt: skip
    rate = accrual.success_rate
    when = (f"{accrual.consecutive_failures} failures in a row" if rate is None else
            f"a success rate under {rate.threshold:g} over {rate.window} (from {rate.min_requests} requests)")
    text = f"ejected after {when}, for {accrual.min_penalty} doubling up to {accrual.max_penalty}, then probed"
    when_detail: dict[str, Any] = (
        {"consecutiveFailures": accrual.consecutive_failures} if rate is None else
        {"successRate": {"threshold": rate.threshold, "window": rate.window, "minRequests": rate.min_requests}})
    detail = {**when_detail, "minPenalty": accrual.min_penalty, "maxPenalty": accrual.max_penalty}
    return [Finding("failure accrual", "endpoints", text, resources.origin(profile), detail)]


def balancer(scope: Scope, resources: Resources) -> list[Finding]:
    """A ServiceProfile's `loadBalancer` when it has one, else the default."""
    assert scope.service is not None
    profile = resources.profile(scope.service, scope.namespace)
    spec: ServiceProfileSpec | None = profile.spec if profile else None  # type: ignore[assignment]
    chosen = spec.load_balancer if spec else None
    if profile is None or chosen is None:
        return [Finding("balancer", "endpoints", DEFAULT_BALANCER, DEFAULT, {"policy": "peak-ewma"})]
    parts = [chosen.policy]
    affinity = chosen.affinity
    if affinity is not None:
        parts.append(f"on header {affinity.header}" if affinity.header else
                     f"on cookie {affinity.cookie} (set for {affinity.ttl})")
    if chosen.weights:
        parts.append("weights " + ", ".join(f"{name} {weight}" for name, weight in chosen.weights))
    detail = profile.spec_dict()["loadBalancer"]
    return [Finding("balancer", "endpoints", ", ".join(parts), resources.origin(profile), detail)]


def ingress(scope: Scope, resources: Resources) -> list[Finding]:
    assert scope.service is not None
    found = []
    for exposure in resources.of_kind("MeshIngress"):
        spec: MeshIngressSpec = exposure.spec  # type: ignore[assignment]
        for rule in spec.rules:
            for path in rule.paths:
                if (path.service, path.namespace or exposure.namespace) == (scope.service, scope.namespace):
                    where = f"{rule.host or '*'}{path.path_prefix}"
                    detail = {"host": rule.host, "pathPrefix": path.path_prefix}
                    origin = resources.origin(exposure)
                    found.append(Finding("ingress", where, f"exposed by the ingress at {where}", origin, detail))
    return found


# --- per workload -------------------------------------------------------------------------------------


def _match_text(match: HTTPMatch) -> str:
    methods = ",".join(match.methods) if match.methods is not None else "any method"
    return f"{match.name} ({methods} {match.path_regex or 'any path'})"


def access(scope: Scope, resources: Resources) -> list[Finding]:
    """TrafficTargets whose destination is one of the workload's service accounts: who may call it, on what."""
    accounts = set(scope.workload.service_accounts)
    found: list[Finding] = []
    groups = {(g.namespace, g.name): g for g in resources.of_kind("HTTPRouteGroup")}
    for target in resources.of_kind("TrafficTarget"):
        spec: TrafficTargetSpec = target.spec  # type: ignore[assignment]
        destination = spec.destination
        if destination.name not in accounts or (destination.namespace or target.namespace) != scope.namespace:
            continue
        allowed: list[str] = []
        for rule in spec.rules:
            group = groups.get((target.namespace, rule.group))
            if group is None:
                allowed.append(f"nothing of HTTPRouteGroup/{rule.group} (it does not exist)")
                continue
            group_spec: HTTPRouteGroupSpec = group.spec  # type: ignore[assignment]
            chosen = [m for m in group_spec.matches if rule.matches is None or m.name in rule.matches]
            allowed.append(f"HTTPRouteGroup/{rule.group}: " + "; ".join(_match_text(m) for m in chosen))
        for source in spec.sources:
            who = f"sa {source.name}" + (f".{source.namespace}" if source.namespace else "")
            detail = {"serviceAccount": source.name, "namespace": source.namespace or target.namespace,
                      "rules": [{"group": r.group, "matches": list(r.matches) if r.matches else None}
                                for r in spec.rules]}  # fmt: skip
            found.append(Finding("access", who, "may call " + " | ".join(allowed), resources.origin(target), detail))
    if not found:
        return [Finding("access", "every client", "admitted: no TrafficTarget selects service account "
                                                  + ", ".join(sorted(accounts)))]  # fmt: skip
    found.append(Finding("access", "every other client", "denied with 403 (PERMISSION_DENIED for gRPC): a "
                                                         "TrafficTarget selects this workload", DEFAULT))  # fmt: skip
    return found


def egress(scope: Scope, resources: Resources) -> list[Finding]:
    """The outside hosts the workload's outbound proxy may reach: the Egresses of its namespace."""
    found = []
    for allowed in resources.of_kind("Egress"):
        if allowed.namespace != scope.namespace:
            continue
        spec: EgressSpec = allowed.spec  # type: ignore[assignment]
        ports = ",".join(str(port) for port in spec.ports)
        where = ", ".join(f"{host}:{ports}" for host in spec.hosts)
        retries = ", retried" if spec.is_retryable else ""
        text = f"may reach {where} (timeout {spec.timeout or _seconds(spec.timeout_s)}{retries})"
        detail = {"hosts": list(spec.hosts), "ports": list(spec.ports), "timeoutSeconds": spec.timeout_s,
                  "isRetryable": spec.is_retryable}  # fmt: skip
        found.append(Finding("egress", allowed.name, text, resources.origin(allowed), detail))
    return found


READERS: tuple[ReaderDef, ...] = (
    ReaderDef("routes, timeouts, retries", ("ServiceProfile",), True, routes),
    ReaderDef("retry budget", ("ServiceProfile",), True, retry_budget),
    ReaderDef("traffic split", ("TrafficSplit",), True, splits),
    ReaderDef("fault injection", ("FaultInjection",), True, faults),
    ReaderDef("failure accrual", ("ServiceProfile",), True, failure_accrual),
    ReaderDef("balancer", ("ServiceProfile",), True, balancer),
    ReaderDef("ingress", ("MeshIngress",), True, ingress),
    ReaderDef("access", ("TrafficTarget", "HTTPRouteGroup"), False, access),
    ReaderDef("egress", ("Egress",), False, egress),
)

COVERED_KINDS = frozenset(kind for reader in READERS for kind in reader.kinds)
# Kinds registered elsewhere that describe does not read yet, with why: each is one reader away.
NOT_DESCRIBED: dict[str, str] = {}
