"""The tap filter language: the flags of `meshctl tap`, the TUI's filter bar and replay all speak it.

    to=deploy/books and method=POST and (status=5xx or latency>=100ms)
    from=ns/booksapp path^=/books not route=[DEFAULT]

Terms are FIELD OP VALUE; juxtaposed terms are AND-ed; `and`, `or`, `not`/`!` and parentheses combine
them. Fields: direction (in|out), from, to (deploy/NAME, ns/NAME or NAME), from-id, to-id (identities),
method, authority, path, route, status (200, 5xx, >=500), grpc-status (14, UNAVAILABLE), latency
(>=100ms). Ops: `=` `!=`, `^=` (prefix) and `~` (regex) for text fields, `>=` `>` `<` `<=` for
status and latency. The text is read by filter_syntax.py; the parsed Filter, here, becomes the proxy's
match (tap.proto) and judges stored exchanges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from meshctl.tapping.events import INBOUND, Endpoint
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.filter_syntax import All, AnyOf, Expr, Not, Term, parse_expr

if TYPE_CHECKING:
    from meshctl.api import tap_pb2


# -- the filter ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filter:
    """A parsed expression: `to_proto()` for the proxy, `decide()`/calling it for stored exchanges."""

    expr: Expr | None
    text: str = ""

    def to_proto(self) -> tap_pb2.Match | None:
        return None if self.expr is None else to_proto(self.expr)

    def decide(self, exchange: Exchange) -> bool | None:
        """True or False, or None while it depends on a response that has not ended yet."""
        return True if self.expr is None else _decide(self.expr, exchange)

    def __call__(self, exchange: Exchange) -> bool:
        """For lists: keep what matches or may still match once it ends."""
        return self.decide(exchange) is not False

    def __and__(self, other: Filter) -> Filter:
        if self.expr is None:
            return other
        if other.expr is None:
            return self
        text = f"({self.text}) and ({other.text})"
        return Filter(All((self.expr, other.expr)), text)


def parse_filter(text: str, namespace: str = "default") -> Filter:
    """Parse an expression; UsageError naming the column of the first problem."""
    if not text.strip():
        return Filter(None, "")
    return Filter(parse_expr(text, namespace), text.strip())


def _quote(value: str) -> str:
    return f'"{value}"' if not value or any(c.isspace() or c in '"()' for c in value) else value


def flags_filter(
    namespace: str,
    *,
    to: str | None = None,
    method: str | None = None,
    path: str | None = None,
    authority: str | None = None,
    route: str | None = None,
    status: str | None = None,
    min_latency: str | None = None,
    expression: str | None = None,
) -> Filter:
    """The filter the command-line flags describe, written in the language so the TUI can show it."""
    terms = []
    for field, op, value in (
        ("to", "=", to), ("method", "=", method), ("path", "^=", path), ("authority", "=", authority),
        ("route", "=", route), ("status", "=", status), ("latency", ">=", min_latency),
    ):  # fmt: skip
        if value is not None:
            terms.append(f"{field}{op}{_quote(value)}")
    if expression:
        terms.append(f"({expression})" if terms else expression)
    return parse_filter(" and ".join(terms), namespace)


# -- into the wire match -----------------------------------------------------------------------------------
def to_proto(expr: Expr) -> tap_pb2.Match:
    from meshctl.api import tap_pb2

    match = tap_pb2.Match()
    if isinstance(expr, All):
        match.all.matches.extend(to_proto(item) for item in expr.items)
    elif isinstance(expr, AnyOf):
        match.any.matches.extend(to_proto(item) for item in expr.items)
    elif isinstance(expr, Not):
        match.__getattribute__("not").CopyFrom(to_proto(expr.item))
    else:
        _term_proto(expr, match)
    return match


def _term_proto(term: Term, match: tap_pb2.Match) -> None:
    from meshctl.api import tap_pb2

    value = term.value
    if term.field == "direction":
        match.direction = tap_pb2.INBOUND if value == INBOUND else tap_pb2.OUTBOUND
    elif term.field in ("source", "destination"):
        ns, name, identity = cast(tuple[str, str, str], value)
        peer = getattr(match, term.field)
        if identity:
            peer.identity = identity
        else:
            peer.workload.namespace, peer.workload.name = ns, name
    elif term.field in ("authority", "path"):
        kind, text = cast(tuple[str, str], value)
        setattr(getattr(match, term.field), kind, text)
    elif term.field == "status":
        match.status.min, match.status.max = cast(tuple[int, int], value)
    else:  # method, route, grpc_status, min_latency_us
        setattr(match, term.field, value)


# -- judging a stored exchange -------------------------------------------------------------------------------
def _decide(expr: Expr, ex: Exchange) -> bool | None:
    if isinstance(expr, Not):
        inner = _decide(expr.item, ex)
        return None if inner is None else not inner
    if isinstance(expr, All | AnyOf):
        want = isinstance(expr, AnyOf)  # the value that decides: True for any, False for all
        unknown = False
        for item in expr.items:
            result = _decide(item, ex)
            if result is want:
                return want
            unknown = unknown or result is None
        return None if unknown else not want
    return _term(expr, ex)


def peer_matches(value: tuple[str, str, str], endpoint: Endpoint) -> bool:
    ns, name, identity = value
    if identity:
        return endpoint.identity == identity
    return endpoint.namespace == ns and (not name or endpoint.workload == name)


def _term(term: Term, ex: Exchange) -> bool | None:
    field, value = term.field, term.value
    if field in ("status", "grpc_status", "min_latency_us"):
        if ex.end is None:
            return None
        if field == "status":
            low, high = cast(tuple[int, int], value)
            return ex.status is not None and low <= ex.status <= high
        if field == "grpc_status":
            return ex.end.grpc_status == value
        return ex.end.since_request_init_us >= cast(int, value)
    req = ex.request
    if req is None:
        return None
    if field == "direction":
        return req.direction == value
    if field == "source":
        return peer_matches(cast(tuple[str, str, str], value), req.source)
    if field == "destination":
        return peer_matches(cast(tuple[str, str, str], value), req.destination)
    if field == "method":
        return req.method == value
    if field == "route":
        return (req.route or "[DEFAULT]") == value
    kind, text = cast(tuple[str, str], value)
    subject = req.authority if field == "authority" else req.path
    if kind == "exact":
        return subject == text
    if kind == "prefix":
        return subject.startswith(text)
    return re.search(text, subject) is not None
