"""The resources of per-service balancing, success-rate accrual and egress: what parses, what is refused
with its field path, the round trip to the document shape, and the schemas registered with each kind."""

from __future__ import annotations

from typing import Any

import pytest

from meshctl.resources import KINDS, parse_document
from meshctl.resources.egress import EgressSpec, allows
from meshctl.resources.failure_accrual import SUCCESS_RATE_SCHEMA, SuccessRate
from meshctl.resources.fields import Problem
from meshctl.resources.load_balancer import LOAD_BALANCER_SCHEMA, Affinity, LoadBalancer
from meshctl.resources.service_profile import ServiceProfileSpec


def profile(spec: dict[str, Any]) -> tuple[ServiceProfileSpec | None, list[str]]:
    problems: list[Problem] = []
    doc = {"apiVersion": "meshctl.io/v1alpha1", "kind": "ServiceProfile",
           "metadata": {"name": "books.booksapp.svc.cluster.local"}, "spec": {"routes": [], **spec}}  # fmt: skip
    parsed = parse_document(doc, problems)
    return (parsed.spec if parsed else None), [str(p) for p in problems]  # type: ignore[return-value]


def egress(spec: dict[str, Any]) -> tuple[EgressSpec | None, list[str]]:
    problems: list[Problem] = []
    doc = {"apiVersion": "meshctl.io/v1alpha1", "kind": "Egress",
           "metadata": {"name": "payments", "namespace": "booksapp"}, "spec": spec}  # fmt: skip
    parsed = parse_document(doc, problems)
    return (parsed.spec if parsed else None), [str(p) for p in problems]  # type: ignore[return-value]


def test_load_balancer_parses_and_round_trips() -> None:
    lb = {"policy": "session-affinity", "affinity": {"cookie": "books-session", "ttl": "30m"},
          "weights": {"books-0": 3, "127.0.0.1:4143": 1}}  # fmt: skip
    spec, problems = profile({"loadBalancer": lb})
    assert problems == [] and spec is not None
    assert spec.load_balancer == LoadBalancer("session-affinity", Affinity(cookie="books-session", ttl="30m",
                                              ttl_s=1800.0), (("127.0.0.1:4143", 1), ("books-0", 3)))  # fmt: skip
    doc = {"apiVersion": "meshctl.io/v1alpha1", "kind": "ServiceProfile",
           "metadata": {"name": "books.booksapp.svc.cluster.local"}, "spec": {"routes": [], "loadBalancer": lb}}
    resource = parse_document(doc, [])
    assert resource is not None and resource.spec_dict()["loadBalancer"] == lb
    header, problems = profile({"loadBalancer": {"policy": "session-affinity", "affinity": {"header": "X-User"}}})
    assert header is not None and header.load_balancer is not None
    assert header.load_balancer.affinity == Affinity(header="x-user")


@pytest.mark.parametrize(
    ("lb", "problem"),
    [
        ({"policy": "random"}, "spec.loadBalancer.policy: expected peak-ewma or round-robin"),
        ({"policy": "session-affinity"}, "spec.loadBalancer.affinity: missing"),
        ({"policy": "round-robin", "affinity": {"header": "x"}}, "only with policy: session-affinity"),
        ({"policy": "session-affinity", "affinity": {"header": "x", "cookie": "y"}}, "exactly one of header"),
        ({"policy": "session-affinity", "affinity": {"header": "x", "ttl": "1h"}}, "ttl: only with cookie"),
        ({"policy": "session-affinity", "affinity": {"cookie": "a b"}}, "affinity.cookie: expected a cookie name"),
        ({"weights": {"books-0": 0}}, "spec.loadBalancer.weights.books-0: expected an integer from 1 to 10000"),
        ({"wieghts": {}}, "did you mean 'weights'"),
    ],
)
def test_load_balancer_mistakes_are_refused_with_their_path(lb: dict[str, Any], problem: str) -> None:
    spec, problems = profile({"loadBalancer": lb})
    assert spec is None and any(problem in p for p in problems), problems


def test_failure_accrual_is_one_of_consecutive_failures_or_success_rate() -> None:
    rate = {"threshold": 0.8, "window": "30s", "minRequests": 20}
    spec, problems = profile({"failureAccrual": {"successRate": rate}})
    assert problems == [] and spec is not None and spec.failure_accrual is not None
    assert spec.failure_accrual.success_rate == SuccessRate(0.8, "30s", 30.0, 20)
    assert spec.failure_accrual.consecutive_failures is None
    _, problems = profile({"failureAccrual": {"successRate": rate, "consecutiveFailures": 5}})
    assert any("expected exactly one of consecutiveFailures or successRate" in p for p in problems)
    _, problems = profile({"failureAccrual": {"minPenalty": "1s"}})
    assert any("expected exactly one of consecutiveFailures or successRate" in p for p in problems)
    _, problems = profile({"failureAccrual": {"successRate": {**rate, "threshold": 1.5}}})
    assert any("threshold: expected a number from 0 to 1" in p for p in problems)
    _, problems = profile({"failureAccrual": {"successRate": {"threshold": 0.8}}})
    assert any("successRate.window: missing" in p for p in problems)


def test_egress_parses_matches_hosts_and_refuses_what_the_proxy_would_not_do() -> None:
    spec, problems = egress({"hosts": ["API.Payments.example.", "*.cdn.example"], "ports": [{"number": 8080}],
                             "timeout": "2s", "isRetryable": True})  # fmt: skip
    assert problems == [] and spec == EgressSpec(("api.payments.example", "*.cdn.example"), (8080,), "2s", 2.0, True)
    assert allows(spec, "api.payments.example", 8080) and not allows(spec, "api.payments.example", 80)
    assert allows(spec, "img.cdn.example", 8080) and allows(spec, "a.b.cdn.example", 8080)
    assert not allows(spec, "cdn.example", 8080) and not allows(spec, "evilcdn.example", 8080)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"hosts": ["books"], "ports": [{"number": 80}]}, "names a service of the mesh"),
        ({"hosts": ["books.booksapp.svc.cluster.local"], "ports": [{"number": 80}]}, "names a service of the mesh"),
        ({"hosts": ["a..b"], "ports": [{"number": 80}]}, "expected a host name"),
        ({"hosts": ["x.example"], "ports": [{"number": 443, "protocol": "https-passthrough"}]}, "expected http"),
        ({"hosts": [], "ports": [{"number": 80}]}, "expected at least one host"),
        ({"hosts": ["x.example"]}, "spec.ports: missing"),
    ]
    for bad, problem in cases:
        parsed, problems = egress(bad)
        assert parsed is None and any(problem in p for p in problems), (bad, problems)
    _, problems = egress({"hosts": ["x.example"], "ports": [{"number": 80}]})
    doc = {"apiVersion": "meshctl.io/v1alpha1", "kind": "Egress", "metadata": {"name": "x"}, "spec": {}}
    assert parse_document(doc, problems := []) is None and any("metadata.namespace" in str(p) for p in problems)


def test_schemas_are_structural_and_registered() -> None:
    egress_kind = KINDS["Egress"]
    assert egress_kind.plural == "egresses" and egress_kind.spec_schema is not None
    for schema in (egress_kind.spec_schema, LOAD_BALANCER_SCHEMA, SUCCESS_RATE_SCHEMA):
        assert schema["type"] == "object" and schema["properties"]
        stack = [schema]
        while stack:  # every property has a type (a structural schema); oneOf only says what is (not) required
            node = stack.pop()
            for sub in node.get("properties", {}).values():
                assert "type" in sub, sub
                stack.append(sub)
            for branch in node.get("oneOf", []):
                assert set(branch) <= {"required", "not"} and set(branch.get("not", {})) <= {"required"}
    assert LOAD_BALANCER_SCHEMA["properties"]["policy"]["enum"] == ["peak-ewma", "round-robin", "least-request",
                                                                    "session-affinity"]  # fmt: skip
