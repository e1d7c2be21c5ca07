"""Egress through the request stack (admitted hosts, refusals with the fix in the answer), per-service
balancers made from the profile, and the cost of these policies when nothing configures them: the code
of egress, weights, affinity and success rate is not entered once per request (counted)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from meshctl.api import mesh_pb2
from meshctl.proxy.plan import RequestPlan
from meshctl.proxy.policy import affinity, balance, breaker, egress
from meshctl.proxy.policy.resolve import Endpoint
from meshctl.proxy.rescue import render_http1
from meshctl.proxy.runtime import ProxyRuntime
from meshctl.proxy.stack import Stack
from tests.unit.proxy.test_stack import AUTH, NS, make_runtime


class Peer:
    peer_identity: str | None = "web"

    def peer_address(self) -> str:
        return "127.0.0.1:5555"


def snapshot(rt: ProxyRuntime, *resources: mesh_pb2.Resource, profile: dict[str, Any] | None = None) -> None:
    books = mesh_pb2.Service(name="books", namespace=NS, port=7000, protocol="http", endpoints=[
        mesh_pb2.Endpoint(address="127.0.0.1", port=5001 + i, identity=f"b{i}", pod=f"books-{i}", ready=True)
        for i in range(3)])  # fmt: skip
    extra = [] if profile is None else [mesh_pb2.Resource(kind="ServiceProfile", name=f"books.{NS}.svc.cluster.local",
                                                          namespace=NS, spec_json=json.dumps(profile))]  # fmt: skip
    rt.on_snapshot(mesh_pb2.Snapshot(version=9, services=[books], resources=[*resources, *extra]))


def egress_resource(namespace: str = NS) -> mesh_pb2.Resource:
    spec = {"hosts": ["api.payments.example", "*.cdn.example"], "ports": [{"number": 8080}], "timeout": "2s",
            "isRetryable": True}  # fmt: skip
    return mesh_pb2.Resource(kind="Egress", name="payments", namespace=namespace, spec_json=json.dumps(spec))


def plan(stack: Stack, authority: str, headers: list[tuple[bytes, bytes]] | None = None) -> RequestPlan:
    return stack.plan("GET", authority, "/x", headers or [], Peer())


def test_an_egress_admits_its_hosts_and_ports_with_its_timeout_and_retries() -> None:
    rt = make_runtime()
    snapshot(rt, egress_resource(), egress_resource("other"))
    stack = Stack(rt, "outbound", False)
    admitted = plan(stack, "api.payments.example:8080")
    assert admitted.failure is None and admitted.endpoint == Endpoint("api.payments.example", 8080, "", "")
    assert admitted.timeout_s == 2.0 and admitted.budget is not None and admitted.route is not None
    admitted.finish(200, None, 4.0)
    assert plan(stack, "img.CDN.example:8080").endpoint == Endpoint("img.cdn.example", 8080, "", "")
    metrics = rt.metrics.render().decode()
    assert 'authority="api.payments.example:8080"' in metrics and 'route="egress/payments"' in metrics
    assert rt.config_dump()["egress"] == [{"egress": f"{NS}/payments", "hosts": ["api.payments.example",
                                                                                 "*.cdn.example"], "ports": [8080]}]


def test_everything_else_is_refused_with_the_fix_in_the_answer() -> None:
    rt = make_runtime()
    snapshot(rt, egress_resource())
    stack = Stack(rt, "outbound", False)
    for authority, hint in [
        ("api.payments.example:443", "apply an Egress for api.payments.example:443"),
        ("www.example.org", "apply an Egress for www.example.org:80"),
        ("nope:7000", "no service nope in namespace booksapp on port 7000: check the name"),
    ]:
        refused = plan(stack, authority)
        assert refused.failure is not None and refused.failure.reason == "unknown service"
        assert refused.failure.hint == hint and (refused.failure.http_status, refused.failure.grpc_status) == (503, 14)
        answer = render_http1(refused.failure, close=False)
        assert b"mesh-proxy-error: unknown service\r\n" in answer and answer.endswith(f": {hint}\n".encode())
    assert b'proxy_errors_total{reason="unknown service"} 3' in rt.metrics.render()


def test_the_profile_chooses_the_balancer_and_a_change_replaces_it() -> None:
    rt = make_runtime()
    lb = {"policy": "session-affinity", "affinity": {"header": "x-user"}, "weights": {"books-0": 2}}
    snapshot(rt, profile={"routes": [], "loadBalancer": lb})
    stack = Stack(rt, "outbound", False)
    picks = Counter(plan(stack, AUTH, [(b"x-user", b"alice")]).endpoint for _ in range(20))
    assert len(picks) == 1
    assert rt.config_dump()["load_balancers"] == {AUTH: lb}
    snapshot(rt, profile={"routes": [], "loadBalancer": {"policy": "round-robin"}})
    picks = Counter(plan(stack, AUTH, [(b"x-user", b"alice")]).endpoint for _ in range(30))
    assert sorted(picks.values()) == [10, 10, 10]


def test_a_cookie_affinity_plan_carries_the_cookie_for_the_response() -> None:
    rt = make_runtime()
    lb = {"policy": "session-affinity", "affinity": {"cookie": "s", "ttl": "10m"}}
    snapshot(rt, profile={"routes": [], "loadBalancer": lb})
    first = plan(Stack(rt, "outbound", False), AUTH)
    assert first.set_cookie is not None and first.set_cookie.endswith(b"; Path=/; Max-Age=600; HttpOnly")
    again = plan(Stack(rt, "outbound", False), AUTH, [(b"cookie", first.set_cookie.split(b";")[0])])
    assert again.set_cookie is None and again.endpoint == first.endpoint


# -- cost when unconfigured ------------------------------------------------------------------------------

COUNTED: list[tuple[Any, str]] = [
    (egress.EgressTable, "resolve"),
    (affinity.SessionAffinity, "pick_keyed"),
    (balance._Stateful, "_weighted"),
    (balance.RoundRobin, "_weighted"),
    (balance.Weights, "of"),
    (breaker.Breaker, "_rate_outcome"),
]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    for owner, name in COUNTED:
        original: Callable[..., Any] = getattr(owner, name)

        def counted(*args: Any, _original: Callable[..., Any] = original, _name: str = name, **kw: Any) -> Any:
            counts[_name] += 1
            return _original(*args, **kw)

        monkeypatch.setattr(owner, name, counted)
    yield counts


def requests(rt: ProxyRuntime, n: int) -> None:
    stack = Stack(rt, "outbound", False)
    for i in range(n):
        p = plan(stack, AUTH if i % 2 else "unknown.example:80", [(b"x-user", b"u%d" % i)])
        assert p.set_cookie is None
        p.finish(200 if i % 3 else 500, None, 1.0)


def test_unconfigured_policies_cost_nothing_per_request(calls: Counter[str]) -> None:
    rt = make_runtime()
    snapshot(rt, profile={"routes": [], "failureAccrual": {"consecutiveFailures": 5}})
    assert rt.router.egress is None
    requests(rt, 1000)
    assert sum(calls.values()) == 0, calls
    balancer = rt.balancer(rt.router.destinations[0])
    assert balancer.affinity is None and balancer.spec is None
    # The same requests with everything configured do enter that code (the count can fail).
    lb = {"policy": "session-affinity", "affinity": {"header": "x-user"}, "weights": {"books-0": 2}}
    rate = {"threshold": 0.5, "window": "10s", "minRequests": 5}
    snapshot(rt, egress_resource(), profile={"routes": [], "loadBalancer": lb, "failureAccrual": {"successRate": rate}})
    requests(rt, 100)
    assert calls["resolve"] >= 1 and calls["pick_keyed"] == 50 and calls["_rate_outcome"] == 50
