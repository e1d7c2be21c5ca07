"""ServiceProfile: the routes of one service, with timeouts, retries and failure classification.

The shape is Linkerd's (linkerd.io/v1alpha2), so profiles written for it work unchanged:

    apiVersion: meshctl.io/v1alpha1
    kind: ServiceProfile
    metadata: {name: books.booksapp.svc.cluster.local}
    spec:
      routes:
      - name: GET /books/{id}
        condition: {method: GET, pathRegex: '/books/\\d+'}
        responseClasses: [{condition: {status: {min: 500, max: 599}}, isFailure: true}]
        timeout: 300ms
        isRetryable: true
      retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 10s}
      failureAccrual: {consecutiveFailures: 5}   # ours: see failure_accrual.py
      loadBalancer: {policy: round-robin}         # ours: see load_balancer.py

The conditions of routes and response classes are profile_conditions.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.identity import TRUST_DOMAIN, is_dns_label
from meshctl.resources import failure_accrual, load_balancer
from meshctl.resources.failure_accrual import FailureAccrual
from meshctl.resources.fields import (
    Problem,
    boolean,
    child,
    describe,
    duration,
    integer,
    item,
    known_keys,
    mapping,
    number,
    sequence,
    string,
)
from meshctl.resources.load_balancer import LoadBalancer
from meshctl.resources.profile_conditions import (
    RequestMatch,
    ResponseMatch,
    request_dict,
    request_match,
    response_dict,
    response_match,
)
from meshctl.resources.profile_schema import DEFAULT_ROUTE_TIMEOUT_S, MAX_ROUTE_NAME
from meshctl.resources.profile_schema import SPEC_SCHEMA as SPEC_SCHEMA  # the kind's schema, in profile_schema

DEFAULT_ROUTE = "[DEFAULT]"  # the route of requests no profile route matches


@dataclass(frozen=True, slots=True)
class ResponseClass:
    condition: ResponseMatch
    is_failure: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    condition: RequestMatch
    response_classes: tuple[ResponseClass, ...] = ()
    timeout: str | None = None  # as written ("300ms"), kept for round trips
    timeout_s: float = DEFAULT_ROUTE_TIMEOUT_S
    is_retryable: bool = False


@dataclass(frozen=True, slots=True)
class RetryBudget:
    retry_ratio: float
    min_retries_per_second: int
    ttl: str
    ttl_s: float


DEFAULT_RETRY_BUDGET = RetryBudget(retry_ratio=0.2, min_retries_per_second=10, ttl="10s", ttl_s=10.0)


@dataclass(frozen=True, slots=True)
class ServiceProfileSpec:
    routes: tuple[Route, ...] = ()
    retry_budget: RetryBudget | None = None  # None: the proxy applies DEFAULT_RETRY_BUDGET
    failure_accrual: FailureAccrual | None = None  # None: endpoints are not ejected for failed responses
    load_balancer: LoadBalancer | None = None  # None: the proxy's own balancer (peak-EWMA), no weights


# --- names ------------------------------------------------------------------------------------------


def check_profile_name(name: str) -> str | None:
    """A ServiceProfile is named after the service's FQDN: <service>.<namespace>.svc.cluster.local."""
    suffix = f".svc.{TRUST_DOMAIN}"
    head = name[: -len(suffix)] if name.endswith(suffix) else ""
    service, _, namespace = head.partition(".")
    if not (is_dns_label(service) and is_dns_label(namespace)):
        return f'expected a service FQDN such as "books.booksapp.svc.{TRUST_DOMAIN}", got {describe(name)}'
    return None


def profile_namespace(name: str) -> str:
    """The service's namespace, the default namespace of its profile."""
    return name.split(".")[1]


# --- parsing ----------------------------------------------------------------------------------------


def parse_spec(value: object, path: str, problems: list[Problem]) -> ServiceProfileSpec | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("routes", "retryBudget", "failureAccrual", "loadBalancer"))
    before = len(problems)
    routes: list[Route] = []
    raw_routes = sequence(node.get("routes", []), child(path, "routes"), problems)
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_routes or []):
        route_path = item(child(path, "routes"), index)
        route = _route(raw, route_path, problems)
        if route is None:
            continue
        if route.name in seen:
            problems.append(
                Problem(
                    child(route_path, "name"),
                    f"duplicate route name {route.name!r} (first at index {seen[route.name]})",
                )
            )
        seen.setdefault(route.name, index)
        routes.append(route)
    budget = None
    if node.get("retryBudget") is not None:
        budget = _retry_budget(node["retryBudget"], child(path, "retryBudget"), problems)
    accrual = None
    if node.get("failureAccrual") is not None:
        accrual = failure_accrual.parse(node["failureAccrual"], child(path, "failureAccrual"), problems)
    balancing = None
    if node.get("loadBalancer") is not None:
        balancing = load_balancer.parse(node["loadBalancer"], child(path, "loadBalancer"), problems)
    if len(problems) > before:
        return None
    return ServiceProfileSpec(routes=tuple(routes), retry_budget=budget, failure_accrual=accrual,
                              load_balancer=balancing)  # fmt: skip


def _route(value: object, path: str, problems: list[Problem]) -> Route | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("name", "condition", "responseClasses", "timeout", "isRetryable"))
    before = len(problems)
    name = _route_name(node.get("name"), child(path, "name"), problems)
    if "condition" not in node:
        problems.append(Problem(child(path, "condition"), "missing (the request condition of the route)"))
        condition = None
    else:
        condition = request_match(node["condition"], child(path, "condition"), problems)
    classes: list[ResponseClass] = []
    raw_classes = sequence(node.get("responseClasses", []), child(path, "responseClasses"), problems)
    for index, raw in enumerate(raw_classes or []):
        parsed = _response_class(raw, item(child(path, "responseClasses"), index), problems)
        if parsed is not None:
            classes.append(parsed)
    timeout, timeout_s = None, DEFAULT_ROUTE_TIMEOUT_S
    if node.get("timeout") is not None:
        seconds = duration(node["timeout"], child(path, "timeout"), problems)
        if seconds is not None:
            timeout, timeout_s = str(node["timeout"]), seconds
    retryable = False
    if node.get("isRetryable") is not None:
        retryable = bool(boolean(node["isRetryable"], child(path, "isRetryable"), problems))
    if len(problems) > before or name is None or condition is None:
        return None
    return Route(name, condition, tuple(classes), timeout, timeout_s, retryable)


def _route_name(value: object, path: str, problems: list[Problem]) -> str | None:
    name = string(value, path, problems, 'a route name such as "GET /books/{id}"')
    if name is None:
        return None
    if name == DEFAULT_ROUTE:
        problems.append(Problem(path, f"{DEFAULT_ROUTE!r} is reserved for requests that match no route"))
        return None
    if len(name) > MAX_ROUTE_NAME or not name.isprintable():
        problems.append(Problem(path, f"expected at most {MAX_ROUTE_NAME} printable characters, got {describe(name)}"))
        return None
    return name


def _response_class(value: object, path: str, problems: list[Problem]) -> ResponseClass | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("condition", "isFailure"))
    if "condition" not in node:
        problems.append(Problem(child(path, "condition"), "missing (the response condition of the class)"))
        return None
    condition = response_match(node["condition"], child(path, "condition"), problems)
    failure = False
    if node.get("isFailure") is not None:
        parsed = boolean(node["isFailure"], child(path, "isFailure"), problems)
        if parsed is None:
            return None
        failure = parsed
    return None if condition is None else ResponseClass(condition, failure)


def _retry_budget(value: object, path: str, problems: list[Problem]) -> RetryBudget | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    keys = ("retryRatio", "minRetriesPerSecond", "ttl")
    known_keys(node, path, problems, keys)
    for key in keys:
        if node.get(key) is None:
            problems.append(Problem(child(path, key), "missing"))
    if any(node.get(key) is None for key in keys):
        return None
    ratio = number(node["retryRatio"], child(path, "retryRatio"), problems)
    per_second = integer(node["minRetriesPerSecond"], child(path, "minRetriesPerSecond"), problems, minimum=0)
    ttl_s = duration(node["ttl"], child(path, "ttl"), problems)
    if ratio is None or per_second is None or ttl_s is None:
        return None
    return RetryBudget(ratio, per_second, str(node["ttl"]), ttl_s)


# --- back to the document shape ---------------------------------------------------------------------


def spec_to_dict(spec: ServiceProfileSpec) -> dict[str, Any]:
    """The spec in its YAML/JSON shape (camelCase), as sent to proxies and written by `apply`."""
    out: dict[str, Any] = {"routes": [_route_dict(route) for route in spec.routes]}
    if spec.retry_budget is not None:
        budget = spec.retry_budget
        out["retryBudget"] = {
            "retryRatio": budget.retry_ratio,
            "minRetriesPerSecond": budget.min_retries_per_second,
            "ttl": budget.ttl,
        }
    if spec.failure_accrual is not None:
        out["failureAccrual"] = failure_accrual.to_dict(spec.failure_accrual)
    if spec.load_balancer is not None:
        out["loadBalancer"] = load_balancer.to_dict(spec.load_balancer)
    return out


def _route_dict(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {"name": route.name, "condition": request_dict(route.condition)}
    if route.response_classes:
        out["responseClasses"] = [
            {"condition": response_dict(cls.condition), "isFailure": cls.is_failure} for cls in route.response_classes
        ]
    if route.timeout is not None:
        out["timeout"] = route.timeout
    if route.is_retryable:
        out["isRetryable"] = True
    return out


