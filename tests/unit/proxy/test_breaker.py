"""Circuit breaking: the breaker alone with a fake clock, the ServiceProfile field that configures it, and
the request stack ejecting a failing endpoint and answering "circuit open" when every one is out."""

from __future__ import annotations

import json
from typing import Any

from meshctl.api import mesh_pb2
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.plan import RequestPlan
from meshctl.proxy.policy.breaker import Breaker
from meshctl.proxy.policy.resolve import Endpoint
from meshctl.proxy.runtime import ProxyRuntime, build_runtime
from meshctl.proxy.stack import Stack
from meshctl.resources import parse_document
from meshctl.resources.failure_accrual import FailureAccrual
from meshctl.resources.fields import Problem
from tests.unit.proxy.test_retry import Clock

NS = "booksapp"
AUTH = f"books.{NS}.svc.cluster.local:7000"


def test_failures_in_a_row_eject_and_the_penalty_doubles_until_a_probe_succeeds() -> None:
    clock = Clock()
    b = Breaker(FailureAccrual(3, "1s", 1.0, "3s", 3.0), clock)
    ends = ("a", "b")
    b.outcome("a", True), b.outcome("a", True), b.outcome("a", False)  # a success breaks the run
    assert not b.outcome("a", True) and not b.outcome("a", True) and b.endpoints(ends) is ends
    assert b.outcome("a", True) and b.endpoints(ends) == ("b",)
    clock.now += 1.0  # the penalty is over: back on probation, the first outcome decides
    assert b.endpoints(ends) is ends and b.to_json()["endpoints"]["a"]["state"] == "probation"  # type: ignore[index]
    assert b.outcome("a", True) and b.endpoints(ends) == ("b",)
    clock.now += 1.9
    assert b.endpoints(ends) == ("b",)  # twice as long this time
    clock.now += 0.1
    assert b.endpoints(ends) is ends
    b.outcome("a", False)  # the probe succeeded: closed again, the next ejection starts from minPenalty
    for _ in range(3):
        b.outcome("a", True)
    clock.now += 1.0
    assert b.endpoints(ends) is ends and b.ejections == 3


def test_every_endpoint_ejected_leaves_none_and_the_penalty_is_capped() -> None:
    clock = Clock()
    b = Breaker(FailureAccrual(1, "1s", 1.0, "2s", 2.0), clock)
    assert b.outcome("a", True) and b.outcome("b", True) and b.endpoints(("a", "b")) == ()
    for _ in range(5):
        clock.now += 2.0
        assert b.endpoints(("a",)) == ("a",)
        b.outcome("a", True)
    clock.now += 2.0
    assert b.endpoints(("a",)) == ("a",)  # never more than maxPenalty
    b.retain(("a",))
    assert "b" not in b.to_json()["endpoints"]  # type: ignore[operator]


def profile_doc(accrual: object) -> dict[str, Any]:
    return {"apiVersion": "meshctl.io/v1alpha1", "kind": "ServiceProfile", "metadata": {"name": AUTH.rsplit(":", 1)[0]},
            "spec": {"routes": [], "failureAccrual": accrual}}  # fmt: skip


def test_the_profile_field_is_validated_and_written_back() -> None:
    problems: list[Problem] = []
    resource = parse_document(profile_doc({"consecutiveFailures": 5, "maxPenalty": "30s"}), problems)
    assert problems == [] and resource is not None
    assert resource.spec_dict()["failureAccrual"] == {"consecutiveFailures": 5, "minPenalty": "1s",
                                                      "maxPenalty": "30s"}  # fmt: skip
    for bad, where in (({"consecutiveFailure": 5}, "spec.failureAccrual.consecutiveFailure"),
                       ({"consecutiveFailures": 0}, "spec.failureAccrual.consecutiveFailures"),
                       ({"consecutiveFailures": 2, "minPenalty": "1m", "maxPenalty": "10s"},
                        "spec.failureAccrual.minPenalty")):  # fmt: skip
        problems = []
        assert parse_document(profile_doc(bad), problems) is None
        assert where in [p.path for p in problems], problems


def make_runtime(accrual: dict[str, Any] | None) -> ProxyRuntime:
    doc: dict[str, Any] = {
        "pod": "web-0", "namespace": NS, "identity": "web", "outbound": {"listen": "127.0.0.1:4140"},
        "admin": {"listen": "127.0.0.1:4191"}, "control": {"address": "127.0.0.1:8086", "identity": "cp"},
        "trust_anchors": "ca.pem", "token_file": "t", "balancer": "round-robin",
    }  # fmt: skip
    rt = build_runtime(parse_proxy_config(doc), clock=Clock())
    books = mesh_pb2.Service(
        name="books", namespace=NS, port=7000, protocol="http",
        endpoints=[mesh_pb2.Endpoint(address="127.0.0.1", port=p, identity="b", pod=f"books-{p}", ready=True)
                   for p in (5001, 5002)],
    )  # fmt: skip
    spec: dict[str, Any] = {"routes": []}
    if accrual is not None:
        spec["failureAccrual"] = accrual
    profile = mesh_pb2.Resource(kind="ServiceProfile", name=AUTH.rsplit(":", 1)[0], namespace=NS,
                                spec_json=json.dumps(spec))  # fmt: skip
    rt.on_snapshot(mesh_pb2.Snapshot(version=1, services=[books], resources=[profile]))
    return rt


class Source:
    peer_identity: str | None = None

    def peer_address(self) -> str:
        return "127.0.0.9:1"


def plan(stack: Stack) -> RequestPlan:
    return stack.plan("GET", "books:7000", "/", [], Source())


def port(p: RequestPlan) -> int:
    assert isinstance(p.endpoint, Endpoint)
    return p.endpoint.port


def test_a_failing_endpoint_is_ejected_then_every_one_gives_circuit_open() -> None:
    rt = make_runtime({"consecutiveFailures": 2})
    stack = Stack(rt, "outbound", False)
    for _ in range(4):  # round robin: two failures on each endpoint; 5002 answers well
        p = plan(stack)
        p.finish(503 if port(p) == 5001 else 200, None, 1.0)
    assert {port(plan(stack)) for _ in range(6)} == {5002}
    dump = rt.config_dump()["circuit_breakers"][AUTH]
    assert dump["ejections"] == 1 and dump["endpoints"]["127.0.0.1:5001"]["state"] == "ejected"
    for _ in range(2):
        p = plan(stack)
        p.finish(500, None, 1.0)
    p = plan(stack)
    assert p.failure is not None and (p.failure.http_status, p.failure.reason) == (503, "circuit open")
    text = rt.metrics.render().decode()
    assert f'endpoint_ejections_total{{direction="outbound",authority="{AUTH}"}} 2' in text
    assert 'proxy_errors_total{reason="circuit open"} 1' in text


def test_without_failure_accrual_there_is_no_breaker() -> None:
    rt = make_runtime(None)
    stack = Stack(rt, "outbound", False)
    for _ in range(10):
        p = plan(stack)
        assert p.breaker is None
        p.finish(503, None, 1.0)
    assert rt.config_dump()["circuit_breakers"] == {}


def test_attempts_and_their_responses_balance_when_no_other_attempt_can_start() -> None:
    rt = make_runtime({"consecutiveFailures": 1})
    stack = Stack(rt, "outbound", False)
    first = plan(stack)
    first.finish(500, None, 1.0)  # ejects one endpoint
    p = plan(stack)
    p.budget = rt.retry_budget(p.dest)  # type: ignore[arg-type]  # as a retryable route would have it
    assert not p.retry(500, None, 1.0)  # its failure ejects the last endpoint: nothing left to try
    p.finish(500, None, 1.0, failed=True)
    stats = rt.metrics.route("outbound", AUTH, "[DEFAULT]", True, NS, "books")
    assert stats.actual_requests == sum(c.count for c in stats.actual_responses.values()) == 2
    lone = plan(stack)
    assert lone.failure is not None and lone.failure.reason == "circuit open"
