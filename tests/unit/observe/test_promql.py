"""PromQL text: exact for the small builders, structural for the composed queries, and a query budget."""

from __future__ import annotations

from dataclasses import dataclass, field

from meshctl.observe import promql
from meshctl.observe.prometheus import Sample
from meshctl.observe.promql import eq, one_of, regex_escape, selector
from meshctl.observe.routes import collect_routes
from meshctl.observe.scopes import RouteView, WorkloadView
from meshctl.observe.stat import collect_stat

SCOPE = (eq("direction", "inbound"), eq("namespace", "booksapp"), eq("deployment", "webapp"))
SEL = 'route_response_total{direction="inbound",namespace="booksapp",deployment="webapp"}'


def test_matchers_quote_and_escape() -> None:
    assert str(eq("rt_route", 'GET "/x"')) == 'rt_route="GET \\"/x\\""'
    assert str(one_of("dst_service", ["books"])) == 'dst_service="books"'
    assert str(one_of("pod", ["b.1", "a+2", "b.1"])) == 'pod=~"a\\\\+2|b\\\\.1"'
    assert regex_escape("a.b(c)") == "a\\.b\\(c\\)"
    assert selector("up", (eq("job", "x"),)) == 'up{job="x"}'


def test_route_counts_is_an_exact_window_change_by_route() -> None:
    query = promql.route_counts([SCOPE], 60)
    change = f"(({SEL} - {SEL} offset 1m) >= 0 or {SEL})"
    by = "sum by (dst_namespace, dst_service, rt_route, classification)"
    assert f'label_replace({by} ({change}), "kind", "effective", "", "")' in query
    assert "route_actual_response_total{" in query and '"kind", "actual"' in query
    assert "increase(" not in query and "rate(" not in query


def test_route_buckets_by_route_and_le() -> None:
    query = promql.route_buckets([SCOPE], 90)
    assert query.startswith("sum by (dst_namespace, dst_service, rt_route, le) (")
    assert "route_response_latency_seconds_bucket{" in query and "offset 1m30s" in query


def test_scopes_are_a_union() -> None:
    other = (eq("direction", "outbound"), eq("deployment", "ingress"))
    query = promql.workload_counts(("namespace", "deployment"), [SCOPE, other], 60)
    assert query.count(" or ") == 3  # one per scope's birth fallback, one between the scopes
    assert 'response_total{direction="outbound",deployment="ingress"}' in query


def test_saturation_carries_three_signals() -> None:
    query = promql.workload_saturation(("namespace",), [SCOPE], [SCOPE], [(eq("component", "proxy"),)])
    for signal in ("in_flight", "tcp", "meshed"):
        assert f'"signal", "{signal}"' in query
    assert 'up{component="proxy"}' in query and "tcp_open_connections{" in query


@dataclass
class CountingClient:
    """A PrometheusClient stand-in that answers nothing and counts the queries."""

    queries: list[str] = field(default_factory=list)

    def query(self, expr: str) -> list[Sample]:
        self.queries.append(expr)
        return []


def test_at_most_three_queries_whatever_the_number_of_routes() -> None:
    client = CountingClient()
    many = {("booksapp", "webapp"): tuple(f"GET /r{i}" for i in range(500))}
    view = RouteView((SCOPE,), (("booksapp", "webapp"),))
    report = collect_routes(
        client, view, 60, target="deploy/webapp", namespace="booksapp", to=None, profiles=many  # type: ignore[arg-type]
    )
    assert len(report.rows) == 501 and len(client.queries) == 2
    stat_view = WorkloadView(("namespace", "deployment"), (SCOPE,), (SCOPE,), ((eq("component", "proxy"),),), {})
    collect_stat(client, stat_view, 60, kind="deployment", namespace="booksapp")  # type: ignore[arg-type]
    assert len(client.queries) == 2 + 3
