"""The filter language: parsing, errors that point at the problem, the wire match, and judging exchanges."""

from __future__ import annotations

import pytest

from meshctl.api import tap_pb2
from meshctl.errors import UsageError
from meshctl.tapping.filter import flags_filter, parse_filter
from meshctl.tapping.store import TapStore
from tests.unit.tapping.scenario import scenario


def exchanges() -> dict[str, object]:
    store = TapStore()
    for event in scenario():
        store.add(event)
    return {f"{e.instance}:{e.id}": e for e in store.exchanges()}


def selected(text: str) -> list[str]:
    f = parse_filter(text, "booksapp")
    return sorted(key for key, ex in exchanges().items() if f.decide(ex))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["webapp-0:1", "webapp-0:2", "webapp-0:3", "webapp-1:1"]),
        ("method=post", ["webapp-0:2", "webapp-0:3"]),
        ("direction=in", ["webapp-0:1"]),
        ("to=deploy/books", ["webapp-0:2"]),
        ("from=ns/booksapp and to=ratings", ["webapp-0:3"]),
        ("to-id=books.booksapp.serviceaccount.identity.meshctl.cluster.local", ["webapp-0:2"]),
        ("path^=/books", ["webapp-0:1", "webapp-0:2"]),
        ("path~^/authors/\\d+$", ["webapp-1:1"]),
        ("authority=books.booksapp.svc.cluster.local:7002", ["webapp-0:2"]),
        ("status=5xx", ["webapp-0:2"]),
        ("status>=400 or grpc-status=UNAVAILABLE", ["webapp-0:2", "webapp-0:3"]),
        ("status!=200", ["webapp-0:2", "webapp-1:1"]),
        ("latency>=100ms", ["webapp-0:3", "webapp-1:1"]),
        ("latency<5ms", ["webapp-0:2"]),
        ("route=[DEFAULT]", ["webapp-0:2", "webapp-0:3"]),
        ('route="GET /books"', ["webapp-0:1"]),
        ("not (method=GET or dir=in) latency>1s", []),
        ("!method=GET and (status=5xx or latency>=100ms)", ["webapp-0:2", "webapp-0:3"]),
    ],
)
def test_expressions_select_the_right_exchanges(text: str, expected: list[str]) -> None:
    assert selected(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("method", "column 1: expected FIELD OP VALUE"),
        ("colour=red", "unknown field 'colour'"),
        ("method=GET and (path=/x", "a ')' is missing"),
        ("status=6xx", "status is a code (404) or a class (5xx)"),
        ("latency>=100", "not a duration"),
        ("latency=1s", "latency takes >=, >, < or <="),
        ("path~(", "bad regex"),
        ("to=pod/webapp-0", "from/to take deploy/NAME"),
        ("method=GET or", "a term is missing"),
        ("grpc-status=NOPE", "unknown gRPC status"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_filter(text, "booksapp")
    assert message in caught.value.message
    assert caught.value.hint


def test_response_terms_are_undecided_while_in_flight() -> None:
    store = TapStore()
    first = scenario()[0]
    exchange = store.add(first)
    assert exchange is not None
    assert parse_filter("status=5xx").decide(exchange) is None
    assert parse_filter("status=5xx or dir=in").decide(exchange) is True
    assert parse_filter("status=5xx and dir=out").decide(exchange) is False
    assert parse_filter("status=5xx")(exchange)  # lists keep what may still match


def test_flags_become_one_expression_and_one_wire_match() -> None:
    f = flags_filter("booksapp", to="books", method="post", path="/books", status="5xx", min_latency="100ms")
    assert f.text == "to=books and method=post and path^=/books and status=5xx and latency>=100ms"
    match = f.to_proto()
    assert match is not None
    terms = {m.WhichOneof("match"): m for m in match.all.matches}
    assert terms["destination"].destination.workload == tap_pb2.Workload(namespace="booksapp", name="books")
    assert terms["method"].method == "POST"
    assert terms["path"].path.prefix == "/books"
    assert (terms["status"].status.min, terms["status"].status.max) == (500, 599)
    assert terms["min_latency_us"].min_latency_us == 100_000


def test_negation_and_alternatives_on_the_wire() -> None:
    match = parse_filter("not dir=in or path~^/x", "ns").to_proto()
    assert match is not None
    first, second = match.any.matches
    assert getattr(first, "not").direction == tap_pb2.INBOUND
    assert second.path.regex == "^/x"
    assert parse_filter("  ").to_proto() is None


def test_combining_filters() -> None:
    both = parse_filter("method=GET") & parse_filter("dir=in")
    assert selected(both.text) == ["webapp-0:1"]
