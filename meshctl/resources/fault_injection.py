"""FaultInjection: abort or delay a share of a service's requests, to test how its clients cope.

    apiVersion: meshctl.io/v1alpha1
    kind: FaultInjection
    metadata: {name: books-faults, namespace: booksapp}
    spec:
      service: books                       # requests to this service, from any meshed client
      routes: ["GET /books/{id}"]          # optional: only these ServiceProfile routes
      abort: {percent: 10, httpStatus: 503, grpcStatus: 14}
      delay: {percent: 5, fixedDelay: 200ms}

The client's proxy applies it before choosing an endpoint: an aborted request never leaves it (its
answer carries `mesh-proxy-error: fault injected`); a delayed one waits, within its timeout, first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.resources import openapi
from meshctl.resources.fields import (
    Problem,
    child,
    duration,
    integer,
    item,
    known_keys,
    mapping,
    number,
    sequence,
    string,
)
from meshctl.resources.traffic_split import service_name


def _percent_schema() -> openapi.Schema:
    return openapi.number("The share of requests, 0 to 100.", minimum=0, maximum=100, example=10)


SPEC_SCHEMA = openapi.obj(
    "Abort or delay a share of a service's requests, in the client's proxy, to test how clients cope.",
    {
        "service": openapi.dns_label("The service whose requests are affected, from any meshed client.",
                                     "a service name", "books"),
        "routes": openapi.array("Only these ServiceProfile routes (default: every request of the service).",
                                openapi.string("A route name.", title="a route name", example="GET /books/{id}"),
                                min_items=1, title="at least one route (omit it for every route)"),
        "abort": openapi.obj(
            "Answer a share of the requests at once, without sending them.",
            {
                "percent": _percent_schema(),
                "httpStatus": openapi.integer("The HTTP status of the answer (default 503).", minimum=400,
                                              maximum=599, example=503),
                "grpcStatus": openapi.integer("The gRPC status of a gRPC request's answer (default 14, UNAVAILABLE).",
                                              minimum=1, maximum=16, example=14),
            },
            required=("percent",),
        ),
        "delay": openapi.obj(
            "Hold a share of the requests before sending them, within their timeout.",
            {"percent": _percent_schema(), "fixedDelay": openapi.duration("How long, such as 200ms.", "200ms")},
            required=("percent", "fixedDelay"),
        ),
    },
    required=("service",),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Abort:
    percent: float
    http_status: int = 503
    grpc_status: int = 14  # UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Delay:
    percent: float
    fixed_delay: str
    fixed_delay_s: float


@dataclass(frozen=True, slots=True)
class FaultInjectionSpec:
    service: str
    routes: tuple[str, ...] | None  # None: every request of the service
    abort: Abort | None
    delay: Delay | None


def _percent(node: dict[str, object], path: str, problems: list[Problem]) -> float | None:
    if node.get("percent") is None:
        problems.append(Problem(child(path, "percent"), "missing (the share of requests, 0 to 100)"))
        return None
    value = number(node["percent"], child(path, "percent"), problems)
    if value is not None and value > 100:
        problems.append(Problem(child(path, "percent"), f"expected a number from 0 to 100, got {value:g}"))
        return None
    return value


def _abort(value: object, path: str, problems: list[Problem]) -> Abort | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("percent", "httpStatus", "grpcStatus"))
    percent = _percent(node, path, problems)
    http = 503
    if node.get("httpStatus") is not None:
        http = integer(node["httpStatus"], child(path, "httpStatus"), problems, minimum=400, maximum=599) or 0
    grpc = 14
    if node.get("grpcStatus") is not None:
        grpc = integer(node["grpcStatus"], child(path, "grpcStatus"), problems, minimum=1, maximum=16) or 0
    return None if percent is None or not http or not grpc else Abort(percent, http, grpc)


def _delay(value: object, path: str, problems: list[Problem]) -> Delay | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("percent", "fixedDelay"))
    percent = _percent(node, path, problems)
    if node.get("fixedDelay") is None:
        problems.append(Problem(child(path, "fixedDelay"), "missing (how long, e.g. 200ms)"))
        return None
    seconds = duration(node["fixedDelay"], child(path, "fixedDelay"), problems)
    return None if percent is None or seconds is None else Delay(percent, str(node["fixedDelay"]), seconds)


def parse_spec(value: object, path: str, problems: list[Problem]) -> FaultInjectionSpec | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    before = len(problems)
    known_keys(node, path, problems, ("service", "routes", "abort", "delay"))
    service = service_name(node.get("service"), child(path, "service"), problems)
    routes: tuple[str, ...] | None = None
    if node.get("routes") is not None:
        raw = sequence(node["routes"], child(path, "routes"), problems, "a list of route names")
        names = [string(r, item(child(path, "routes"), i), problems, "a route name") for i, r in enumerate(raw or [])]
        routes = tuple(n for n in names if n is not None)
        if raw is not None and not raw:
            problems.append(Problem(child(path, "routes"), "expected at least one route (omit it for every route)"))
    abort = _abort(node["abort"], child(path, "abort"), problems) if node.get("abort") is not None else None
    delay = _delay(node["delay"], child(path, "delay"), problems) if node.get("delay") is not None else None
    if node.get("abort") is None and node.get("delay") is None:
        problems.append(Problem(path, "expected abort, delay or both"))
    if len(problems) > before or service is None:
        return None
    return FaultInjectionSpec(service, routes, abort, delay)


def spec_to_dict(spec: FaultInjectionSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"service": spec.service}
    if spec.routes is not None:
        out["routes"] = list(spec.routes)
    if spec.abort is not None:
        out["abort"] = {"percent": spec.abort.percent, "httpStatus": spec.abort.http_status,
                        "grpcStatus": spec.abort.grpc_status}  # fmt: skip
    if spec.delay is not None:
        out["delay"] = {"percent": spec.delay.percent, "fixedDelay": spec.delay.fixed_delay}
    return out
