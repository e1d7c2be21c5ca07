"""Traffic split: the TrafficSplit resource, and the request stack sharing an apex's requests among its
backends by weight, with metrics under the apex and live weight changes (real runtime, no sockets)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from meshctl.api import mesh_pb2
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.runtime import ProxyRuntime, build_runtime
from meshctl.proxy.stack import Stack
from meshctl.resources import parse_document
from meshctl.resources.fields import Problem
from tests.unit.proxy.test_breaker import Source

NS = "booksapp"
APEX = f"books.{NS}.svc.cluster.local:7000"


def split_doc(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
            "metadata": {"name": "books-canary", "namespace": NS}, "spec": spec}  # fmt: skip


def test_the_resource_is_smi_shaped_and_validated() -> None:
    problems: list[Problem] = []
    spec = {"service": "books", "backends": [{"service": "books-v1", "weight": 90},
                                             {"service": "books-v2", "weight": 10}]}  # fmt: skip
    resource = parse_document(split_doc(spec), problems)
    assert problems == [] and resource is not None and resource.spec_dict() == spec
    for bad, path in (
        ({"service": "books", "backends": []}, "spec.backends"),
        ({"service": "books", "backends": [{"service": "a", "weight": 0}]}, "spec.backends"),
        ({"service": "books", "backends": [{"service": "a", "weight": 1}, {"service": "a", "weight": 1}]},
         "spec.backends[1].service"),
        ({"service": "books", "backends": [{"service": "a", "weight": -1}]}, "spec.backends[0].weight"),
        ({"service": "books", "backends": [{"service": "a", "weight": 1}], "matches": []}, "spec.matches"),
        ({"service": "Books.x", "backends": [{"service": "a", "weight": 1}]}, "spec.service"),
    ):  # fmt: skip
        problems = []
        assert parse_document(split_doc(bad), problems) is None, bad
        assert path in [p.path for p in problems], problems
    problems = []
    assert parse_document({**split_doc(spec), "metadata": {"name": "x"}}, problems) is None
    assert [p.path for p in problems] == ["metadata.namespace"]


def service(name: str, port: int) -> mesh_pb2.Service:
    return mesh_pb2.Service(name=name, namespace=NS, port=7000, protocol="http", endpoints=[
        mesh_pb2.Endpoint(address="127.0.0.1", port=port, identity=name, pod=f"{name}-0", ready=True)])  # fmt: skip


def snapshot(weights: dict[str, int], version: int = 1) -> mesh_pb2.Snapshot:
    split = {"service": "books", "backends": [{"service": s, "weight": w} for s, w in weights.items()]}
    profile = {"routes": [{"name": "list", "condition": {"method": "GET", "pathRegex": "/books"}}]}
    return mesh_pb2.Snapshot(
        version=version, services=[service("books-v1", 5001), service("books-v2", 5002)],
        resources=[
            mesh_pb2.Resource(kind="TrafficSplit", name="books-canary", namespace=NS, spec_json=json.dumps(split)),
            mesh_pb2.Resource(kind="ServiceProfile", name=f"books-v1.{NS}.svc.cluster.local", namespace=NS,
                              spec_json=json.dumps(profile)),
        ],
    )  # fmt: skip


def make_runtime(weights: dict[str, int]) -> ProxyRuntime:
    doc: dict[str, Any] = {
        "pod": "web-0", "namespace": NS, "identity": "web", "outbound": {"listen": "127.0.0.1:4140"},
        "admin": {"listen": "127.0.0.1:4191"}, "control": {"address": "127.0.0.1:8086", "identity": "cp"},
        "trust_anchors": "ca.pem", "token_file": "t",
    }  # fmt: skip
    rt = build_runtime(parse_proxy_config(doc))
    rt.on_snapshot(snapshot(weights))
    return rt


def backends(stack: Stack, n: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(n):
        plan = stack.plan("GET", "books", "/books", [], Source())
        assert plan.failure is None and plan.dest is not None
        seen[plan.dest.service] += 1
        plan.finish(200, None, 1.0)
    return seen


def test_ninety_ten_over_two_thousand_requests_with_metrics_under_the_apex() -> None:
    rt = make_runtime({"books-v1": 90, "books-v2": 10})
    stack = Stack(rt, "outbound", False)
    seen = backends(stack, 2000)
    assert abs(seen["books-v1"] / 2000 - 0.9) <= 0.02 and seen["books-v1"] + seen["books-v2"] == 2000
    assert backends(stack, 10) == {"books-v1": 9, "books-v2": 1}  # interleaved, not in runs
    # The apex's authority in every series; dst_service tells the backends apart. Each backend keeps its
    # own profile (the apex has none here): v1's route, v2's default.
    v1 = rt.metrics.route("outbound", APEX, "list", True, NS, "books-v1")
    v2 = rt.metrics.route("outbound", APEX, "[DEFAULT]", True, NS, "books-v2")
    assert v1.requests + v2.requests == 2010 and v2.requests == 201
    assert rt.config_dump()["traffic_splits"][APEX]["backends"] == {
        f"books-v1.{NS}.svc.cluster.local:7000": 90, f"books-v2.{NS}.svc.cluster.local:7000": 10}  # fmt: skip


def test_a_weight_change_is_live_and_requests_under_way_keep_their_backend() -> None:
    rt = make_runtime({"books-v1": 100, "books-v2": 0})  # blue-green: all on v1
    stack = Stack(rt, "outbound", False)
    under_way = stack.plan("GET", "books", "/books", [], Source())
    assert under_way.dest is not None and under_way.dest.service == "books-v1"
    rt.on_snapshot(snapshot({"books-v1": 0, "books-v2": 100}, version=2))
    assert backends(stack, 20) == {"books-v2": 20}
    under_way.finish(200, None, 1.0)  # the old backend's request completes as it began
    stats = rt.metrics.route("outbound", APEX, "list", True, NS, "books-v1")
    assert {k: v.count for k, v in stats.responses.items()} == {(200, None, False): 1}


def test_a_missing_backend_gives_its_share_to_the_others() -> None:
    rt = make_runtime({"books-v1": 50, "books-v3": 50})
    assert backends(Stack(rt, "outbound", False), 10) == {"books-v1": 10}


def test_a_fault_on_the_apex_applies_to_every_backend() -> None:
    rt = make_runtime({"books-v1": 50, "books-v2": 50})
    snap = snapshot({"books-v1": 50, "books-v2": 50}, version=2)
    snap.services.append(mesh_pb2.Service(name="books", namespace=NS, port=7000, protocol="http"))
    fault = {"service": "books", "abort": {"percent": 100}}
    snap.resources.append(mesh_pb2.Resource(kind="FaultInjection", name="all", namespace=NS,
                                            spec_json=json.dumps(fault)))
    rt.on_snapshot(snap)
    stack = Stack(rt, "outbound", False)
    plans = [stack.plan("GET", "books", "/books", [], Source()) for _ in range(4)]
    assert all(p.failure is not None and p.failure.reason == "fault injected" for p in plans)
    assert {p.dest.service for p in plans if p.dest is not None} == {"books-v1", "books-v2"}
