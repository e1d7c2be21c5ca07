"""A tap.proto Match compiled into a closure the hub calls per request.

Three-valued: a predicate answers True, False, or None when it depends on the response (status, gRPC
status, latency) and the response has not ended yet. all/any/not follow Kleene's logic, so a request
that already cannot match is dropped at its start and one that already matches is streamed at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from meshctl.api import tap_pb2

DEFAULT_ROUTE = "[DEFAULT]"
MAX_REGEX = 256  # characters; a tap expression must stay cheap on the request path
MAX_DEPTH = 16
MAX_TERMS = 64


@dataclass(slots=True)
class Side:
    """One end of a request as the proxy knows it."""

    address: str
    identity: str
    workload: str
    namespace: str
    pod: str


@dataclass(slots=True)
class Head:
    """The request-side facts a match reads."""

    direction: tap_pb2.Direction.ValueType  # INBOUND | OUTBOUND
    source: Side
    destination: Side
    method: str
    authority: str
    path: str
    route: str


@dataclass(slots=True)
class Outcome:
    """The response-side facts, known at the request's end."""

    status: int | None  # None: no response started
    grpc_status: int | None
    latency_us: int


Predicate = Callable[[Head, Outcome | None], bool | None]


class MatchError(ValueError):
    """A match the proxy refuses (bad regex, too deep, too large): INVALID_ARGUMENT for the client."""


def compile_match(match: tap_pb2.Match | None) -> Predicate:
    if match is None or match.WhichOneof("match") is None:
        return lambda head, outcome: True
    budget = [MAX_TERMS]
    return _compile(match, 0, budget)


def _compile(match: tap_pb2.Match, depth: int, budget: list[int]) -> Predicate:
    budget[0] -= 1
    if depth > MAX_DEPTH or budget[0] < 0:
        raise MatchError(f"the match is deeper than {MAX_DEPTH} or has more than {MAX_TERMS} terms")
    kind = match.WhichOneof("match")
    if kind in ("all", "any"):
        parts = [_compile(m, depth + 1, budget) for m in getattr(match, kind).matches]
        return _all(parts) if kind == "all" else _any(parts)
    if kind == "not":
        inner = _compile(getattr(match, "not"), depth + 1, budget)

        def negate(head: Head, outcome: Outcome | None) -> bool | None:
            result = inner(head, outcome)
            return None if result is None else not result

        return negate
    if kind == "direction":
        direction = match.direction
        return lambda head, outcome: head.direction == direction
    if kind in ("source", "destination"):
        return _peer(kind, getattr(match, kind))
    if kind == "method":
        method = match.method
        return lambda head, outcome: head.method == method
    if kind in ("authority", "path"):
        test = _string(getattr(match, kind))
        if kind == "authority":
            return lambda head, outcome: test(head.authority)
        return lambda head, outcome: test(head.path)
    if kind == "route":
        route = match.route or DEFAULT_ROUTE
        return lambda head, outcome: (head.route or DEFAULT_ROUTE) == route
    if kind == "status":
        low, high = match.status.min, match.status.max or 999
        return lambda head, outcome: (
            None if outcome is None else outcome.status is not None and low <= outcome.status <= high
        )
    if kind == "grpc_status":
        code = match.grpc_status
        return lambda head, outcome: None if outcome is None else outcome.grpc_status == code
    if kind == "min_latency_us":
        floor = match.min_latency_us
        return lambda head, outcome: None if outcome is None else outcome.latency_us >= floor
    raise MatchError(f"unknown match term {kind!r}")


def _all(parts: list[Predicate]) -> Predicate:
    def every(head: Head, outcome: Outcome | None) -> bool | None:
        unknown = False
        for part in parts:
            result = part(head, outcome)
            if result is False:
                return False
            unknown = unknown or result is None
        return None if unknown else True

    return every


def _any(parts: list[Predicate]) -> Predicate:
    def some(head: Head, outcome: Outcome | None) -> bool | None:
        unknown = False
        for part in parts:
            result = part(head, outcome)
            if result is True:
                return True
            unknown = unknown or result is None
        return None if unknown else False

    return some


def _peer(kind: str, peer: tap_pb2.Peer) -> Predicate:
    def side(head: Head) -> Side:
        return head.source if kind == "source" else head.destination

    if peer.WhichOneof("peer") == "identity":
        identity = peer.identity
        return lambda head, outcome: side(head).identity == identity
    namespace, name = peer.workload.namespace, peer.workload.name

    def workload(head: Head, outcome: Outcome | None) -> bool:
        s = side(head)
        return (not namespace or s.namespace == namespace) and (not name or s.workload == name)

    return workload


def _string(match: tap_pb2.StringMatch) -> Callable[[str], bool]:
    kind = match.WhichOneof("match")
    if kind == "exact":
        exact = match.exact
        return lambda value: value == exact
    if kind == "prefix":
        prefix = match.prefix
        return lambda value: value.startswith(prefix)
    if kind == "regex":
        if len(match.regex) > MAX_REGEX:
            raise MatchError(f"a regex longer than {MAX_REGEX} characters")
        try:
            pattern = re.compile(match.regex)
        except re.error as exc:
            raise MatchError(f"bad regex {match.regex!r}: {exc}") from None
        return lambda value: pattern.search(value) is not None
    raise MatchError("a string match without exact, prefix or regex")
