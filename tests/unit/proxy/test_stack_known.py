"""The request stack remembers what it decided for an authority (destination, route series, balancer)
only while the next request must get the same: a new snapshot, a split, a fault, access policy or a
series folded into overflow make it decide again (real runtime and metrics, no sockets)."""

from __future__ import annotations

import json
from typing import Any

from meshctl.api import mesh_pb2
from meshctl.metrics.registry import ProxyMetrics
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.h2.dial import UpstreamAddress
from meshctl.proxy.plan import RequestPlan
from meshctl.proxy.policy.resolve import Endpoint
from meshctl.proxy.runtime import ProxyRuntime, build_runtime
from meshctl.proxy.stack import Stack

NS = "booksapp"
AUTH = f"authors.{NS}.svc.cluster.local:7001"


class Client:
    peer_identity: str | None = None

    def peer_address(self) -> str:
        return "127.0.0.1:40000"


def service(name: str, *ports: int) -> mesh_pb2.Service:
    return mesh_pb2.Service(
        name=name, namespace=NS, port=7001, protocol="http",
        endpoints=[mesh_pb2.Endpoint(address="127.0.0.1", port=p, identity="", pod=f"{name}-{p}", ready=True)
                   for p in ports],
    )  # fmt: skip


def make_runtime(pod: str = "web-0") -> ProxyRuntime:
    doc: dict[str, Any] = {
        "pod": pod, "namespace": NS, "identity": "web", "outbound": {"listen": "127.0.0.1:4140"},
        "inbound": {"listen": "127.0.0.1:4143", "app": "127.0.0.1:7001"},
        "admin": {"listen": "127.0.0.1:4191"}, "control": {"address": "127.0.0.1:8086", "identity": "cp"},
        "trust_anchors": "ca.pem", "token_file": "t", "balancer": "round-robin",
    }  # fmt: skip
    rt = build_runtime(parse_proxy_config(doc))
    rt.on_snapshot(mesh_pb2.Snapshot(version=1, services=[service("authors", 5001, 5002)]))
    return rt


def plan(stack: Stack, authority: str = "authors:7001", path: str = "/a") -> RequestPlan:
    return stack.plan("GET", authority, path, [], Client())


def ports(plans: list[RequestPlan]) -> list[int]:
    return [p.endpoint.port for p in plans if isinstance(p.endpoint, Endpoint)]


def test_a_remembered_destination_is_balanced_and_counted_per_request() -> None:
    rt = make_runtime()
    stack = Stack(rt, "outbound", False)
    plans = [plan(stack) for _ in range(4)]
    assert len(stack._known) == 1
    assert ports(plans) == [5001, 5002, 5001, 5002]  # round robin: every request picked its own
    for p in plans:
        assert p.failure is None and p.balancer is plans[0].balancer
        p.finish(200, None, 1.0)
    stats = rt.metrics.route("outbound", AUTH, "[DEFAULT]", True, NS, "authors")
    assert stats is plans[0].stats and stats.requests == stats.actual_requests == 4
    assert {k: v.count for k, v in stats.responses.items()} == {(200, None, False): 4}


def test_a_new_snapshot_is_seen_by_the_next_request() -> None:
    rt = make_runtime()
    stack = Stack(rt, "outbound", False)
    assert ports([plan(stack), plan(stack)]) == [5001, 5002]
    rt.on_snapshot(mesh_pb2.Snapshot(version=2, services=[service("authors", 6001)]))
    assert ports([plan(stack), plan(stack)]) == [6001, 6001]
    rt.on_snapshot(mesh_pb2.Snapshot(version=3, services=[service("authors")]))
    gone = plan(stack)
    assert gone.failure is not None and gone.failure.reason == "no endpoints"
    rt.on_snapshot(mesh_pb2.Snapshot(version=4, services=[]))
    unknown = plan(stack)
    assert unknown.failure is not None and unknown.failure.reason == "unknown service"


def test_a_series_folded_into_overflow_counts_its_overflow_on_every_request() -> None:
    rt = make_runtime()
    rt.metrics = ProxyMetrics(max_authorities=0)
    stack = Stack(rt, "outbound", False)
    plans = [plan(stack) for _ in range(3)]
    assert not stack._known and ports(plans) == [5001, 5002, 5001]
    assert 'proxy_metrics_overflow_total{label="authority"} 3' in rt.metrics.render().decode()


def test_a_split_is_decided_per_request() -> None:
    rt = make_runtime()
    split = {"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
             "metadata": {"name": "authors-canary", "namespace": NS},
             "spec": {"service": "authors", "backends": [{"service": "authors-v1", "weight": 1},
                                                         {"service": "authors-v2", "weight": 1}]}}  # fmt: skip
    rt.on_snapshot(mesh_pb2.Snapshot(
        version=2, services=[service("authors", 5001), service("authors-v1", 5101), service("authors-v2", 5201)],
        resources=[mesh_pb2.Resource(kind="TrafficSplit", name="authors-canary", namespace=NS,
                                     spec_json=json.dumps(split["spec"]))],
    ))  # fmt: skip
    stack = Stack(rt, "outbound", False)
    picked = set(ports([plan(stack) for _ in range(40)]))
    assert picked == {5101, 5201} and AUTH not in stack._known and "authors:7001" not in stack._known


def test_inbound_remembers_the_local_service_and_the_app() -> None:
    rt = make_runtime(pod="authors-5001")
    app = UpstreamAddress("127.0.0.1", 7001)
    stack = Stack(rt, "inbound", True, app)
    plans = [plan(stack, "anything:1") for _ in range(3)]
    assert all(p.failure is None and p.endpoint == app and p.dest is rt.local for p in plans)
    assert len(stack._known) == 1
    stats = rt.metrics.route("inbound", AUTH, "[DEFAULT]", True, NS, "authors")
    assert stats.requests == 3
