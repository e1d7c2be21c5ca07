"""The request stack: how a request is routed, measured and rescued with the real runtime (no sockets),
as both protocol paths ask it (HTTP/2 heads through the connection adapter, HTTP/1.1 with strings)."""

from __future__ import annotations

import json
from typing import Any

from meshctl.api import mesh_pb2
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.errors import ConnectFailed, DeadlineExceeded, UpstreamReset
from meshctl.proxy.h2.dial import UpstreamAddress
from meshctl.proxy.h2.headers import check_request
from meshctl.proxy.h2.server import ConnectionPolicy
from meshctl.proxy.plan import RequestPlan
from meshctl.proxy.policy.resolve import Endpoint
from meshctl.proxy.runtime import ProxyRuntime, build_runtime
from meshctl.proxy.stack import Stack

NS = "booksapp"
AUTH = f"books.{NS}.svc.cluster.local:7000"


def make_runtime(pod: str = "web-0", ingress: bool = False) -> ProxyRuntime:
    doc: dict[str, Any] = {
        "pod": pod, "namespace": NS, "identity": f"web.{NS}.serviceaccount.identity.meshctl.cluster.local",
        "inbound": {"listen": "127.0.0.1:4143", "app": "127.0.0.1:7000", "app_protocol": "grpc"},
        "outbound": {"listen": "127.0.0.1:4140"},
        "admin": {"listen": "127.0.0.1:4191"}, "control": {"address": "127.0.0.1:8086", "identity": "cp"},
        "trust_anchors": "ca.pem", "token_file": "t", "balancer": "round-robin",
    }  # fmt: skip
    if ingress:
        doc["ingress"] = {"listen": "127.0.0.1:8080"}
    rt = build_runtime(parse_proxy_config(doc))
    books = mesh_pb2.Service(
        name="books", namespace=NS, port=7000, protocol="grpc",
        endpoints=[
            mesh_pb2.Endpoint(address="127.0.0.1", port=5001, identity="b1", pod="books-0", ready=True),
            mesh_pb2.Endpoint(address="127.0.0.1", port=5002, identity="b2", pod="books-1", ready=True),
        ],
    )  # fmt: skip
    empty = mesh_pb2.Service(name="empty", namespace=NS, port=7000, protocol="grpc")
    profile = {"routes": [{"name": "get", "condition": {"method": "POST", "pathRegex": "/books.Books/Get"},
                           "timeout": "250ms"}]}  # fmt: skip
    rt.on_snapshot(
        mesh_pb2.Snapshot(
            version=3,
            services=[books, empty],
            resources=[
                mesh_pb2.Resource(
                    kind="ServiceProfile",
                    name=f"books.{NS}.svc.cluster.local",
                    namespace=NS,
                    spec_json=json.dumps(profile),
                ),
                mesh_pb2.Resource(
                    kind="MeshIngress",
                    name="shop",
                    namespace=NS,
                    spec_json=json.dumps({"rules": [{"paths": [{"pathPrefix": "/", "service": "books"}]}]}),
                ),
            ],
        )  # fmt: skip
    )
    return rt


def head(authority: str, path: str = "/books.Books/Get") -> Any:
    return check_request(
        [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", authority.encode()),
            (b"content-type", b"application/grpc"),
        ]  # fmt: skip
    )


def test_outbound_resolves_picks_and_measures_by_route() -> None:
    rt = make_runtime()
    policy = ConnectionPolicy(Stack(rt, "outbound", False), None)
    plans = [policy.plan(head("books:7000")) for _ in range(2)]
    assert all(p.failure is None for p in plans)
    assert {p.endpoint for p in plans} == {Endpoint("127.0.0.1", 5001, "b1", "books-0"),
                                           Endpoint("127.0.0.1", 5002, "b2", "books-1")}  # fmt: skip
    assert plans[0].timeout_s == 0.25
    plans[0].finish(200, 0, 3.0)
    plans[1].finish(200, 14, 5.0)
    plans[1].finish(200, 0, 5.0)  # reported once only
    stats = rt.metrics.route("outbound", AUTH, "get", True, NS, "books")
    assert stats.requests == 2
    assert {k: v.count for k, v in stats.responses.items()} == {(200, 0, False): 1, (200, 14, True): 1}


def test_outbound_failures_are_rescued_and_counted() -> None:
    rt = make_runtime()
    policy = ConnectionPolicy(Stack(rt, "outbound", False), None)
    unknown = policy.plan(head("nope:7000"))
    assert unknown.failure is not None and (unknown.failure.http_status, unknown.failure.grpc_status) == (503, 14)
    assert unknown.failure.reason == "unknown service"
    empty = policy.plan(head(f"empty.{NS}:7000"))
    assert empty.failure is not None and empty.failure.reason == "no endpoints"
    assert policy.plan(head("books")).rescue(DeadlineExceeded("late")).grpc_status == 4
    assert policy.plan(head("books")).rescue(UpstreamReset("gone")).grpc_status == 14
    assert b'proxy_errors_total{reason="unknown service"} 1' in rt.metrics.render()


def test_inbound_goes_to_the_app_and_labels_the_local_service() -> None:
    rt = make_runtime(pod="books-1")
    app = UpstreamAddress("127.0.0.1", 7000)
    plan = ConnectionPolicy(Stack(rt, "inbound", True, app), None).plan(head("whatever:1"))
    assert isinstance(plan, RequestPlan) and plan.failure is None and plan.endpoint == app
    plan.finish(200, 0, 1.0)
    stats = rt.metrics.route("inbound", AUTH, "get", True, NS, "books")
    assert stats.requests == 1 and sum(v.count for v in stats.responses.values()) == 1


def test_ingress_goes_where_a_mesh_ingress_sends_it() -> None:
    rt = make_runtime(ingress=True)
    plan = ConnectionPolicy(Stack(rt, "ingress", False), None).plan(head("www.example.com"))
    assert plan.failure is None and getattr(plan.endpoint, "pod", "").startswith("books-")


def test_refused_attempt_releases_the_endpoint_and_picks_again() -> None:
    rt = make_runtime()
    plan = ConnectionPolicy(Stack(rt, "outbound", False), None).plan(head("books"))
    first = plan.endpoint
    assert plan.repick() and plan.endpoint != first  # round robin moves on
    plan.abandon()
    plan.finish(200, 0, 1.0)  # after abandon nothing more is reported
    assert rt.metrics.route("outbound", AUTH, "get", True, NS, "books").responses == {}


def test_an_unreachable_endpoint_is_avoided_at_once_and_counted_as_an_attempt() -> None:
    rt = make_runtime()
    stack = Stack(rt, "outbound", False)
    plan = stack.plan("POST", "books:7000", "/books.Books/Get", [], ConnectionPolicy(stack, None))
    dead = plan.endpoint
    assert plan.repick(ConnectFailed("refused")) and plan.endpoint != dead
    plan.finish(200, 0, 2.0)
    # Whatever the latency history, the next requests avoid the dead endpoint while its backoff runs.
    later = [stack.plan("POST", "books:7000", "/books.Books/Get", [], ConnectionPolicy(stack, None)) for _ in range(20)]
    assert all(p.endpoint != dead for p in later)
    stats = rt.metrics.route("outbound", AUTH, "get", True, NS, "books")
    assert stats.actual_requests == stats.requests + 1  # the retry is an attempt of its own
    assert {k: v.count for k, v in stats.actual_responses.items()} == {(502, None, True): 1, (200, 0, False): 1}


def test_attempts_are_bounded() -> None:
    rt = make_runtime()
    stack = Stack(rt, "outbound", False)
    plan = stack.plan("POST", "books:7000", "/x", [], ConnectionPolicy(stack, None))
    tries = 0
    while plan.repick(ConnectFailed("refused")):
        tries += 1
        assert tries < 10
    assert plan.attempts <= 3


def test_a_failed_repick_leaves_the_attempt_to_finish_counted_once() -> None:
    rt = make_runtime()
    lone = mesh_pb2.Service(name="books", namespace=NS, port=7000, protocol="grpc", endpoints=[
        mesh_pb2.Endpoint(address="127.0.0.1", port=5001, identity="b1", pod="books-0", ready=True)])  # fmt: skip
    rt.on_snapshot(mesh_pb2.Snapshot(version=4, services=[lone]))
    stack = Stack(rt, "outbound", False)
    plan = stack.plan("POST", "books:7000", "/x", [], ConnectionPolicy(stack, None))
    assert not plan.repick(ConnectFailed("refused"))  # the only endpoint: no other attempt starts
    plan.finish(502, None, 0.0, failed=True)
    stats = rt.metrics.route("outbound", AUTH, "[DEFAULT]", True, NS, "books")
    assert stats.actual_requests == 1 and {k: v.count for k, v in stats.actual_responses.items()} == {
        (502, None, True): 1}  # fmt: skip
