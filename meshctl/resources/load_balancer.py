"""A ServiceProfile's `loadBalancer`: how the clients' proxies choose an endpoint of the service.

    spec:
      loadBalancer:
        policy: session-affinity          # peak-ewma (default) | round-robin | least-request | session-affinity
        affinity: {cookie: books-session, ttl: 1h}             # or {header: x-user}
        weights: {books-0: 3, books-1: 1}                      # optional, every policy honours them

Weights live in the resource, not in discovery: they are an operator's decision about one service (drain
a replica to weight 1, favour a bigger one), so they belong next to the other per-service choices, change
with `meshctl apply`, and mean the same on both platforms. A key names an endpoint by its pod name or by
its "address:port" as discovery lists it; endpoints not named weigh 1.

Session affinity hashes the request's key (a header's value, or the value of a cookie the proxy sets on
the first response and the client sends back after) onto the endpoints by weighted rendezvous hashing,
so an endpoint that leaves (ejected, gone) moves only its own keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.resources import openapi
from meshctl.resources.fields import (
    Problem,
    child,
    describe,
    duration,
    integer,
    known_keys,
    mapping,
    string,
)

POLICIES = ("peak-ewma", "round-robin", "least-request", "session-affinity")
MAX_WEIGHT = 10_000
DEFAULT_COOKIE_TTL = "1h"
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class Affinity:
    header: str | None = None  # lower-case header name whose value is the key
    cookie: str | None = None  # the cookie whose value is the key (set by the proxy when absent)
    ttl: str = DEFAULT_COOKIE_TTL  # the cookie's Max-Age, as written
    ttl_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class LoadBalancer:
    policy: str = "peak-ewma"
    affinity: Affinity | None = None  # set exactly when policy is session-affinity
    weights: tuple[tuple[str, int], ...] = ()  # (pod name or "address:port", weight), as written


SCHEMA = openapi.obj(
    "How the clients' proxies choose an endpoint of this service.",
    {
        "policy": openapi.string(
            "peak-ewma (default): power of two choices by latency and load; round-robin; least-request: fewer "
            "requests in flight of two; session-affinity: a key hashed to an endpoint.",
            enum=POLICIES, example="session-affinity"),
        "affinity": openapi.obj(
            "The key of session-affinity: one header's value, or a cookie the proxy sets when absent.",
            {
                "header": openapi.string("The request header whose value is the key.", example="x-user"),
                "cookie": openapi.string("The cookie whose value is the key; the proxy sets it when absent.",
                                         example="books-session"),
                "ttl": openapi.duration("The cookie's lifetime (Max-Age; default 1h); only with cookie.",
                                        example="1h"),
            },
            one_of=(("header",), ("cookie",)),
        ),
        "weights": openapi.map_of(
            'Relative weights by pod name or "address:port" (endpoints not named weigh 1).',
            openapi.integer("The endpoint's weight.", minimum=1, maximum=MAX_WEIGHT),
            example={"books-0": 3, "books-1": 1}),
    },
)  # fmt: skip
LOAD_BALANCER_SCHEMA = SCHEMA


def parse(value: object, path: str, problems: list[Problem]) -> LoadBalancer | None:
    node = mapping(value, path, problems)
    if node is None:
        return None
    known_keys(node, path, problems, ("policy", "affinity", "weights"))
    before = len(problems)
    policy: str | None = "peak-ewma"
    if node.get("policy") is not None:
        raw = node["policy"]
        if raw not in POLICIES:
            expected = ", ".join(POLICIES)
            problems.append(Problem(child(path, "policy"), f"expected one of {expected}, got {describe(raw)}"))
            policy = None  # unknown: whether affinity belongs cannot be judged
        else:
            policy = str(raw)
    affinity = None
    if node.get("affinity") is not None:
        affinity = _affinity(node["affinity"], child(path, "affinity"), problems)
        if policy not in ("session-affinity", None):
            problems.append(Problem(child(path, "affinity"), "only with policy: session-affinity"))
    elif policy == "session-affinity":
        problems.append(Problem(child(path, "affinity"), "missing (session-affinity hashes a header or a cookie)"))
    weights = _weights(node.get("weights"), child(path, "weights"), problems)
    if len(problems) > before or policy is None:
        return None
    return LoadBalancer(policy, affinity, weights)


def _affinity(value: object, path: str, problems: list[Problem]) -> Affinity | None:
    node = mapping(value, path, problems, "a mapping with header, or cookie and ttl")
    if node is None:
        return None
    known_keys(node, path, problems, ("header", "cookie", "ttl"))
    if (node.get("header") is None) == (node.get("cookie") is None):
        problems.append(Problem(path, "expected exactly one of header or cookie"))
        return None
    if node.get("header") is not None:
        if node.get("ttl") is not None:
            problems.append(Problem(child(path, "ttl"), "only with cookie (a header's value has no lifetime)"))
        header = _token(node["header"], child(path, "header"), problems, "a header name such as x-user")
        return None if header is None else Affinity(header=header.lower())
    name = _token(node["cookie"], child(path, "cookie"), problems, "a cookie name")
    ttl, ttl_s = DEFAULT_COOKIE_TTL, 3600.0
    if node.get("ttl") is not None:
        seconds = duration(node["ttl"], child(path, "ttl"), problems)
        if seconds is None:
            return None
        ttl, ttl_s = str(node["ttl"]), seconds
    return None if name is None else Affinity(cookie=name, ttl=ttl, ttl_s=ttl_s)


def _token(value: object, path: str, problems: list[Problem], what: str) -> str | None:
    text = string(value, path, problems, what)
    if text is not None and not set(text) <= _TOKEN:
        problems.append(Problem(path, f"expected {what} (letters, digits and !#$%&'*+-.^_`|~), got {describe(text)}"))
        return None
    return text


def _weights(value: object, path: str, problems: list[Problem]) -> tuple[tuple[str, int], ...]:
    if value is None:
        return ()
    node = mapping(value, path, problems, "a mapping of pod name or address:port to weight")
    if node is None:
        return ()
    out = []
    for key, raw in node.items():
        weight = integer(raw, child(path, key), problems, minimum=1, maximum=MAX_WEIGHT)
        if weight is not None:
            out.append((key, weight))
    return tuple(sorted(out))


def to_dict(spec: LoadBalancer) -> dict[str, Any]:
    out: dict[str, Any] = {"policy": spec.policy}
    affinity = spec.affinity
    if affinity is not None:
        out["affinity"] = ({"header": affinity.header} if affinity.header is not None
                           else {"cookie": affinity.cookie, "ttl": affinity.ttl})  # fmt: skip
    if spec.weights:
        out["weights"] = dict(spec.weights)
    return out
