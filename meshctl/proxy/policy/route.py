"""ServiceProfile routes compiled for the request path: which route a request is, and how to treat it.

Semantics follow Linkerd: routes are tried in order and the first whose condition holds wins;
`pathRegex` (RE2 syntax, matched in linear time) must match the whole path (anchored), the query
string is not part of the path; fields set together in one condition must all hold; a response is
classified by the first response class whose condition holds, else as a failure when it is a 5xx
(or, for gRPC, a non-OK grpc-status).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshctl.resources.fields import Problem
from meshctl.resources.pathregex import compile_path_regex
from meshctl.resources.profile_conditions import RequestMatch, ResponseMatch
from meshctl.resources.service_profile import (
    DEFAULT_RETRY_BUDGET,
    DEFAULT_ROUTE,
    RetryBudget,
    ServiceProfileSpec,
    parse_spec,
)

_RequestPredicate = Callable[[str, str], bool]
_StatusPredicate = Callable[[int], bool]
_CACHE_SIZE = 1024  # distinct (method, path) pairs remembered; cleared when full (paths carry ids)


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    name: str
    timeout_s: float | None  # None: no route timeout
    is_retryable: bool
    classes: tuple[tuple[_StatusPredicate, bool], ...] = ()  # none: 5xx (or a gRPC status but OK) fails

    def is_failure(self, status: int, grpc_status: int | None = None) -> bool:
        for matches, failure in self.classes:
            if matches(status):
                return failure
        if grpc_status is not None:
            return grpc_status != 0
        return status >= 500


DEFAULT = CompiledRoute(name=DEFAULT_ROUTE, timeout_s=None, is_retryable=False)


class CompiledProfile:
    """The routes of one service, ready for `match(method, path)` on every request."""

    __slots__ = ("_cache", "_routes", "retry_budget", "routes", "failure_accrual", "load_balancer")

    def __init__(self, spec: ServiceProfileSpec) -> None:
        self.routes: tuple[CompiledRoute, ...] = tuple(
            CompiledRoute(
                name=route.name,
                timeout_s=route.timeout_s,
                is_retryable=route.is_retryable,
                classes=tuple((_response_predicate(c.condition), c.is_failure) for c in route.response_classes),
            )
            for route in spec.routes
        )
        self._routes: tuple[tuple[_RequestPredicate, CompiledRoute], ...] = tuple(
            (_request_predicate(route.condition), compiled)
            for route, compiled in zip(spec.routes, self.routes, strict=True)
        )
        self.retry_budget: RetryBudget = spec.retry_budget or DEFAULT_RETRY_BUDGET
        self.failure_accrual = spec.failure_accrual  # None: no circuit breaking (policy/breaker.py)
        self.load_balancer = spec.load_balancer  # None: the proxy's balancer (policy/balance.py)
        self._cache: dict[tuple[str, str], CompiledRoute] = {}

    def match(self, method: str, path: str) -> CompiledRoute:
        query = path.find("?")
        key = (method, path if query < 0 else path[:query])
        found = self._cache.get(key)
        if found is not None:
            return found
        bare = key[1]
        found = DEFAULT
        for predicate, route in self._routes:
            if predicate(method, bare):
                found = route
                break
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = found
        return found

    def route_for(self, method: str, path: str) -> str:
        """The route name of a request, "[DEFAULT]" when no route matches."""
        return self.match(method, path).name


def compile_profile(spec: ServiceProfileSpec | Mapping[str, Any] | str) -> CompiledProfile:
    """Compile a spec: the model, its dict shape, or the spec_json of a snapshot Resource."""
    if isinstance(spec, ServiceProfileSpec):
        return CompiledProfile(spec)
    raw = json.loads(spec) if isinstance(spec, str) else spec
    problems: list[Problem] = []
    parsed = parse_spec(raw, "spec", problems)
    if parsed is None:
        raise ValueError("; ".join(str(p) for p in problems) or "invalid ServiceProfile spec")
    return CompiledProfile(parsed)


def _request_predicate(match: RequestMatch) -> _RequestPredicate:
    parts: list[_RequestPredicate] = []
    if match.method is not None:
        method = match.method
        parts.append(lambda m, _p: m == method)
    if match.path_regex is not None:
        fullmatch = compile_path_regex(match.path_regex).fullmatch  # RE2: linear in the path's length
        parts.append(lambda _m, p: fullmatch(p) is not None)
    if match.all_of is not None:
        every = tuple(_request_predicate(sub) for sub in match.all_of)
        parts.append(lambda m, p: all(f(m, p) for f in every))
    if match.any_of is not None:
        some = tuple(_request_predicate(sub) for sub in match.any_of)
        parts.append(lambda m, p: any(f(m, p) for f in some))
    if match.not_ is not None:
        negated = _request_predicate(match.not_)
        parts.append(lambda m, p: not negated(m, p))
    if len(parts) == 1:
        return parts[0]
    joined = tuple(parts)
    return lambda m, p: all(f(m, p) for f in joined)


def _response_predicate(match: ResponseMatch) -> _StatusPredicate:
    parts: list[_StatusPredicate] = []
    if match.status is not None:
        low, high = match.status.min, match.status.max
        parts.append(lambda s: low <= s <= high)
    if match.all_of is not None:
        every = tuple(_response_predicate(sub) for sub in match.all_of)
        parts.append(lambda s: all(f(s) for f in every))
    if match.any_of is not None:
        some = tuple(_response_predicate(sub) for sub in match.any_of)
        parts.append(lambda s: any(f(s) for f in some))
    if match.not_ is not None:
        negated = _response_predicate(match.not_)
        parts.append(lambda s: not negated(s))
    if len(parts) == 1:
        return parts[0]
    joined = tuple(parts)
    return lambda s: all(f(s) for f in joined)
