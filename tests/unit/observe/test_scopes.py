"""Targets to label scopes, with and without the platform's list of proxies."""

from __future__ import annotations

import pytest

from meshctl.errors import UsageError
from meshctl.observe.promql import Matcher, eq
from meshctl.observe.scopes import route_view, workload_view
from meshctl.platform.base import ProxyInfo
from meshctl.targets import Kind, parse_target


def _proxy(pod: str, deployment: str, service: str | None, kind: str = "sidecar", ns: str = "booksapp") -> ProxyInfo:
    return ProxyInfo(pod, ns, deployment, "127.0.0.1:4191", "id", kind, service)


PROXIES = [
    _proxy("webapp-0", "webapp", "webapp"),
    _proxy("webapp-1", "webapp", "webapp"),
    _proxy("books-0", "books", "books"),
    _proxy("ingress-0", "ingress", None, kind="ingress"),
]


def _text(scope: tuple[Matcher, ...]) -> str:
    return ",".join(str(m) for m in scope)


def test_inbound_view_of_a_deployment() -> None:
    view = route_view(parse_target("deploy/webapp", "booksapp"), None, PROXIES)
    assert [_text(s) for s in view.scopes] == ['direction="inbound",namespace="booksapp",deployment="webapp"']
    assert view.services == (("booksapp", "webapp"),)


def test_inbound_view_of_every_deployment_of_every_namespace() -> None:
    proxies = [*PROXIES, _proxy("shop-0", "shop", "shop", ns="store")]
    view = route_view(parse_target("deploy", ""), None, proxies)  # `routes deploy -A`
    assert [_text(s) for s in view.scopes] == ['direction="inbound"']
    assert view.services == (("booksapp", "books"), ("booksapp", "webapp"), ("store", "shop"))
    assert [_text(s) for s in view.proxies] == ['component="proxy"']
    assert view.pods == ("books-0", "ingress-0", "shop-0", "webapp-0", "webapp-1")


def test_the_proxies_whose_scrapes_cover_a_view() -> None:
    inbound = route_view(parse_target("deploy/webapp", "booksapp"), None, PROXIES)
    assert [_text(s) for s in inbound.proxies] == ['component="proxy",namespace="booksapp",deployment="webapp"']
    assert inbound.pods == ("webapp-0", "webapp-1")
    service = route_view(parse_target("svc/books", "booksapp"), None, PROXIES)
    assert [_text(s) for s in service.proxies] == ['component="proxy",namespace="booksapp",deployment="books"']
    assert route_view(parse_target("svc/books", "booksapp"), None, None).proxies == ()  # no platform: unknown


def test_inbound_view_of_a_service_needs_no_prometheus_target_labels() -> None:
    view = route_view(parse_target("svc/books", "booksapp"), None, PROXIES)
    assert _text(view.scopes[0]) == 'direction="inbound",dst_namespace="booksapp",dst_service="books"'


def test_outbound_view_to_a_deployment_means_its_service() -> None:
    to = parse_target("deploy/books", "booksapp")
    view = route_view(parse_target("deploy/webapp", "booksapp"), to, PROXIES)
    assert _text(view.scopes[0]) == (
        'direction="outbound",namespace="booksapp",deployment="webapp",dst_namespace="booksapp",dst_service="books"'
    )
    assert view.services == (("booksapp", "books"),)


def test_without_the_platform_the_target_is_taken_at_its_word() -> None:
    to = parse_target("books", "other", default_kind=Kind.SERVICE)
    view = route_view(parse_target("pod/x-1", "ns1"), to, None)
    assert _text(view.scopes[0]) == (
        'direction="outbound",namespace="ns1",pod="x-1",dst_namespace="other",dst_service="books"'
    )


def test_an_ingress_has_no_inbound_routes() -> None:
    with pytest.raises(UsageError) as caught:
        route_view(parse_target("deploy/ingress", "booksapp"), None, PROXIES)
    assert "--to svc/NAME" in (caught.value.hint or "")


def test_unknown_target_hints_at_its_namespace() -> None:
    with pytest.raises(UsageError) as caught:
        route_view(parse_target("deploy/webapp", "default"), None, PROXIES)
    assert caught.value.hint == "it exists in namespace booksapp: add -n booksapp"


def test_stat_of_deployments_adds_the_ingress_outbound_side() -> None:
    view = workload_view(parse_target("deploy", "booksapp"), PROXIES)
    assert view.group == ("namespace", "deployment")
    assert [_text(s) for s in view.served] == [
        'direction="inbound",namespace="booksapp"',
        'direction="outbound",namespace="booksapp",deployment="ingress"',
    ]
    assert view.tcp[1][-1] == eq("peer", "src")
    assert view.instances == {("booksapp", "webapp"): 2, ("booksapp", "books"): 1, ("booksapp", "ingress"): 1}


def test_stat_of_namespaces_counts_inbound_only() -> None:
    view = workload_view(parse_target("ns", "booksapp"), PROXIES)
    assert view.group == ("namespace",) and [_text(s) for s in view.served] == ['direction="inbound"']
    assert view.instances == {("booksapp",): 4}


def test_stat_of_every_namespace() -> None:
    view = workload_view(parse_target("pod", ""), [*PROXIES, _proxy("a-0", "a", "a", ns="other")])
    assert [_text(s) for s in view.served][0] == 'direction="inbound"'
    assert ("other", "a-0") in view.instances


def test_stat_refuses_services() -> None:
    with pytest.raises(UsageError):
        workload_view(parse_target("svc/books", "booksapp"), PROXIES)
