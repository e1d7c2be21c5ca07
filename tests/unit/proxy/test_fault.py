"""Fault injection: the FaultInjection resource, its rate over 10,000 requests through the request stack,
route filtering, and delays waited by both protocol paths before they connect (no sockets)."""

from __future__ import annotations

import json
from typing import Any

from h2.events import RequestReceived

from meshctl.api import mesh_pb2
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.h1.exchange import Exchange
from meshctl.proxy.runtime import ProxyRuntime, build_runtime
from meshctl.proxy.stack import Stack
from meshctl.resources import parse_document
from meshctl.resources.fields import Problem
from tests.unit.proxy.test_breaker import Source
from tests.unit.proxy.test_h1_exchange import FakeClient, attach, request
from tests.unit.proxy.test_h2_relay import Mesh

NS = "booksapp"
AUTH = f"books.{NS}.svc.cluster.local:7000"


def fault_doc(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "meshctl.io/v1alpha1", "kind": "FaultInjection",
            "metadata": {"name": "books-faults", "namespace": NS}, "spec": spec}  # fmt: skip


def test_the_resource_is_validated_and_written_back() -> None:
    problems: list[Problem] = []
    spec = {"service": "books", "routes": ["list"], "abort": {"percent": 10, "httpStatus": 500, "grpcStatus": 13},
            "delay": {"percent": 5.5, "fixedDelay": "200ms"}}  # fmt: skip
    resource = parse_document(fault_doc(spec), problems)
    assert problems == [] and resource is not None and resource.spec_dict() == spec
    for bad, path in (
        ({"service": "books"}, "spec"),
        ({"service": "books", "abort": {"percent": 101}}, "spec.abort.percent"),
        ({"service": "books", "abort": {"percent": 1, "httpStatus": 200}}, "spec.abort.httpStatus"),
        ({"service": "books", "abort": {"percent": 1, "grpcStatus": 0}}, "spec.abort.grpcStatus"),
        ({"service": "books", "delay": {"percent": 1}}, "spec.delay.fixedDelay"),
        ({"service": "books", "delay": {"percent": 1, "fixedDelay": "soon"}}, "spec.delay.fixedDelay"),
        ({"service": "books", "abort": {"percent": 1}, "routes": []}, "spec.routes"),
        ({"service": "books", "abort": {"percent": 1}, "headers": {}}, "spec.headers"),
    ):  # fmt: skip
        problems = []
        assert parse_document(fault_doc(bad), problems) is None, bad
        assert path in [p.path for p in problems], problems


def make_runtime(spec: dict[str, Any]) -> ProxyRuntime:
    doc: dict[str, Any] = {
        "pod": "web-0", "namespace": NS, "identity": "web", "outbound": {"listen": "127.0.0.1:4140"},
        "admin": {"listen": "127.0.0.1:4191"}, "control": {"address": "127.0.0.1:8086", "identity": "cp"},
        "trust_anchors": "ca.pem", "token_file": "t",
    }  # fmt: skip
    rt = build_runtime(parse_proxy_config(doc))
    books = mesh_pb2.Service(name="books", namespace=NS, port=7000, protocol="http", endpoints=[
        mesh_pb2.Endpoint(address="127.0.0.1", port=5001, identity="b", pod="books-0", ready=True)])  # fmt: skip
    profile = {"routes": [{"name": "list", "condition": {"method": "GET", "pathRegex": "/books"}}]}
    rt.on_snapshot(mesh_pb2.Snapshot(version=1, services=[books], resources=[
        mesh_pb2.Resource(kind="FaultInjection", name="books-faults", namespace=NS, spec_json=json.dumps(spec)),
        mesh_pb2.Resource(kind="ServiceProfile", name=AUTH.rsplit(":", 1)[0], namespace=NS,
                          spec_json=json.dumps(profile)),
    ]))  # fmt: skip
    return rt


def test_a_ten_percent_abort_over_ten_thousand_requests() -> None:
    rt = make_runtime({"service": "books", "abort": {"percent": 10, "httpStatus": 500, "grpcStatus": 13}})
    stack = Stack(rt, "outbound", False)
    aborted = 0
    for _ in range(10_000):
        plan = stack.plan("GET", "books", "/books", [], Source())
        if plan.failure is not None:
            assert (plan.failure.http_status, plan.failure.grpc_status, plan.failure.reason) == (
                500, 13, "fault injected") and plan.endpoint is None  # fmt: skip
            aborted += 1
            plan.finish(500, None, 0.0, failed=True)
        else:
            plan.finish(200, None, 1.0)
    assert 800 <= aborted <= 1200, aborted
    text = rt.metrics.render().decode()
    assert f'faults_injected_total{{direction="outbound",authority="{AUTH}"}} {aborted}' in text
    assert f'proxy_errors_total{{reason="fault injected"}} {aborted}' in text
    stats = rt.metrics.route("outbound", AUTH, "list", True, NS, "books")
    assert stats.responses[(500, None, True)].count == aborted  # `routes` shows the injected failures
    assert rt.config_dump()["faults"][AUTH]["abortPercent"] == 10.0


def test_only_the_listed_routes_are_touched() -> None:
    rt = make_runtime({"service": "books", "routes": ["list"], "abort": {"percent": 100}})
    stack = Stack(rt, "outbound", False)
    assert stack.plan("GET", "books", "/books", [], Source()).failure is not None
    assert stack.plan("POST", "books", "/books", [], Source()).failure is None  # route [DEFAULT]


def test_a_delayed_http1_request_connects_only_when_the_delay_is_over() -> None:
    rt = make_runtime({"service": "books", "delay": {"percent": 100, "fixedDelay": "150ms"}})
    client = FakeClient(Stack(rt, "outbound", False))
    head, _ = request(b"GET /books HTTP/1.1\r\nHost: books:7000\r\n\r\n")
    ex = Exchange(client, head)
    ex.start()
    ex.on_end(None)
    assert client.dials == [] and [s for s, _ in client.timers] == [0.15]
    client.timers[0][1]()
    assert len(client.dials) == 1
    attach(ex).answer(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    assert client.written.startswith(b"HTTP/1.1 200")


def test_a_delayed_http2_request_waits_on_the_loop_timer() -> None:
    m = Mesh()
    m.policy.plans.clear()
    original = m.policy.plan

    def delayed(head: Any) -> Any:
        plan = original(head)
        plan.delay_s = 0.2
        return plan

    m.policy.plan = delayed  # type: ignore[method-assign]
    m.client.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/books"),
                              (b":authority", b"svc.ns.svc.cluster.local:7000")], end_stream=True)  # fmt: skip
    m.pump()
    assert not m.of(m.app_events, RequestReceived)
    m.timers.advance(0.2)
    m.pump()
    assert len(m.of(m.app_events, RequestReceived)) == 1
