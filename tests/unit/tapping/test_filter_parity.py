"""The CLI's judge of an expression and the proxy's compiled match agree, term by term, on the same
requests: what replay or a UI filter keeps is what the proxy would have sent."""

from __future__ import annotations

import pytest

from meshctl.api import tap_pb2
from meshctl.proxy.observe.tap_match import Head, Outcome, Side, compile_match
from meshctl.tapping.events import INBOUND, Endpoint
from meshctl.tapping.exchange import Exchange
from meshctl.tapping.filter import parse_filter
from meshctl.tapping.store import TapStore
from tests.unit.tapping.scenario import scenario

EXPRESSIONS = [
    "method=GET", "method=post or dir=in", "not dir=out", "to=deploy/books", "from=ns/booksapp",
    "to=ns/other", "to-id=books.booksapp.serviceaccount.identity.meshctl.cluster.local", "path^=/books",
    "path~^/authors/\\d+$", "authority=books.booksapp.svc.cluster.local:7002", "route=[DEFAULT]",
    'route="GET /books"', "status=5xx", "status!=200", "status>=400 or grpc-status=UNAVAILABLE",
    "latency>=100ms", "latency<5ms", "grpc-status=OK", "(method=GET and latency>1ms) or not (status=2xx)",
]  # fmt: skip


def side(endpoint: Endpoint) -> Side:
    return Side(endpoint.address, endpoint.identity, endpoint.workload, endpoint.namespace, endpoint.pod)


def proxy_view(exchange: Exchange, ended: bool) -> tuple[Head, Outcome | None]:
    r = exchange.request
    assert r is not None
    direction = tap_pb2.INBOUND if r.direction == INBOUND else tap_pb2.OUTBOUND
    head = Head(direction, side(r.source), side(r.destination), r.method, r.authority, r.path, r.route)
    if not ended or exchange.end is None:
        return head, None
    return head, Outcome(exchange.status, exchange.end.grpc_status, exchange.end.since_request_init_us)


def exchanges() -> list[Exchange]:
    store = TapStore()
    for event in scenario():
        store.add(event)
    return store.exchanges()


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_cli_and_proxy_decide_alike(text: str) -> None:
    keep = parse_filter(text, "booksapp")
    match = keep.to_proto()
    assert match is not None
    predicate = compile_match(tap_pb2.Match.FromString(match.SerializeToString()))  # as it crosses the wire
    for exchange in exchanges():
        head, outcome = proxy_view(exchange, ended=True)
        assert predicate(head, outcome) is keep.decide(exchange), (text, exchange.instance, exchange.id)
        in_flight = Exchange(exchange.instance, exchange.id, 0, request=exchange.request)
        head, _ = proxy_view(exchange, ended=False)
        assert predicate(head, None) is keep.decide(in_flight), (text, "in flight", exchange.id)
