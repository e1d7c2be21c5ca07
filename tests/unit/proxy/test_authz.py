"""Access control: the SMI HTTPRouteGroup and TrafficTarget resources, the policy a proxy builds for its
own identity, and the inbound request stack denying with 403 / PERMISSION_DENIED, counted by policy."""

from __future__ import annotations

import json
from typing import Any

from meshctl.api import mesh_pb2
from meshctl.identity import workload_identity
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.policy.authz import authz_for
from meshctl.proxy.runtime import build_runtime
from meshctl.proxy.stack import Stack
from meshctl.resources import parse_document
from meshctl.resources.fields import Problem

NS = "booksapp"
BOOKS, WEB, OTHER = (workload_identity(sa, NS) for sa in ("books", "webapp", "reviews"))
GROUP = {"matches": [{"name": "read", "methods": ["GET"], "pathRegex": "/books(/.*)?"},
                     {"name": "write", "methods": ["POST", "PUT"], "pathRegex": "/books"}]}  # fmt: skip
TARGET = {"destination": {"kind": "ServiceAccount", "name": "books"},
          "rules": [{"kind": "HTTPRouteGroup", "name": "books-routes", "matches": ["read"]}],
          "sources": [{"kind": "ServiceAccount", "name": "webapp"}]}  # fmt: skip


def doc(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    api = "access.smi-spec.io/v1alpha3" if kind == "TrafficTarget" else "specs.smi-spec.io/v1alpha4"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "x", "namespace": NS}, "spec": spec}


def test_the_resources_are_smi_shaped_and_refuse_what_would_be_ignored() -> None:
    for kind, spec in (("HTTPRouteGroup", GROUP), ("TrafficTarget", TARGET)):
        problems: list[Problem] = []
        resource = parse_document(doc(kind, spec), problems)
        assert problems == [] and resource is not None and resource.spec_dict() == spec
    rule = TARGET["rules"][0]  # type: ignore[index]
    for kind, bad, path in (
        ("HTTPRouteGroup", {"matches": [{"name": "a", "headers": {"x": "y"}}]}, "spec.matches[0].headers"),
        ("HTTPRouteGroup", {"matches": [{"name": "a", "pathRegex": "("}]}, "spec.matches[0].pathRegex"),
        ("HTTPRouteGroup", {"matches": [{"name": "a"}, {"name": "a"}]}, "spec.matches[1].name"),
        ("TrafficTarget", {**TARGET, "rules": [{**rule, "kind": "TCPRoute"}]}, "spec.rules[0].kind"),
        ("TrafficTarget", {**TARGET, "sources": []}, "spec.sources"),
        ("TrafficTarget", {**TARGET, "destination": {"kind": "Pod", "name": "b"}}, "spec.destination.kind"),
    ):  # fmt: skip
        problems = []
        assert parse_document(doc(kind, bad), problems) is None, bad
        assert path in [p.path for p in problems], problems


def resources(target: dict[str, Any] = TARGET, name: str = "books-readers") -> list[mesh_pb2.Resource]:
    return [
        mesh_pb2.Resource(kind="HTTPRouteGroup", name="books-routes", namespace=NS, spec_json=json.dumps(GROUP)),
        mesh_pb2.Resource(kind="TrafficTarget", name=name, namespace=NS, spec_json=json.dumps(target)),
    ]


def test_a_policy_admits_listed_identities_on_listed_routes_and_denies_the_rest() -> None:
    assert authz_for(OTHER, resources(), NS) is None  # not selected: every client admitted
    authz = authz_for(BOOKS, resources(), NS)
    assert authz is not None and authz.name == f"{NS}/books-readers"
    assert not authz.denies(WEB, "GET", "/books/7?full=1")
    assert authz.denies(WEB, "POST", "/books")  # a route the rule does not list
    assert authz.denies(OTHER, "GET", "/books")  # an identity no source names
    assert authz.denies(None, "GET", "/books")  # no mesh identity at all
    every = authz_for(BOOKS, resources({**TARGET, "rules": [{"kind": "HTTPRouteGroup", "name": "books-routes"}]}),
                      NS)  # fmt: skip
    assert every is not None and not every.denies(WEB, "PUT", "/books")
    missing = authz_for(BOOKS, resources({**TARGET, "rules": [{"kind": "HTTPRouteGroup", "name": "gone"}]}), NS)
    assert missing is not None and missing.denies(WEB, "GET", "/books")  # default deny stays


class Peer:
    def __init__(self, identity: str | None) -> None:
        self.peer_identity = identity

    def peer_address(self) -> str:
        return "127.0.0.9:1"


def test_the_inbound_stack_answers_403_and_counts_the_denial_by_policy() -> None:
    doc_: dict[str, Any] = {
        "pod": "books-0", "namespace": NS, "identity": BOOKS, "admin": {"listen": "127.0.0.1:4191"},
        "inbound": {"listen": "127.0.0.1:4143", "app": "127.0.0.1:7000"},
        "control": {"address": "127.0.0.1:8086", "identity": "cp"}, "trust_anchors": "ca.pem", "token_file": "t",
    }  # fmt: skip
    rt = build_runtime(parse_proxy_config(doc_))
    books = mesh_pb2.Service(name="books", namespace=NS, port=7000, protocol="http", endpoints=[
        mesh_pb2.Endpoint(address="127.0.0.1", port=4143, identity=BOOKS, pod="books-0", ready=True)])  # fmt: skip
    rt.on_snapshot(mesh_pb2.Snapshot(version=1, services=[books], resources=resources()))
    stack = Stack(rt, "inbound", True, "app")
    admitted = stack.plan("GET", "books", "/books/1", [], Peer(WEB))
    assert admitted.failure is None and admitted.endpoint == "app"
    denied = stack.plan("GET", "books", "/books/1", [], Peer(OTHER))
    assert denied.failure is not None and denied.endpoint is None
    assert (denied.failure.http_status, denied.failure.grpc_status, denied.failure.reason) == (403, 7, "unauthorized")
    text = rt.metrics.render().decode()
    assert (f'authz_denied_total{{direction="inbound",authority="books.{NS}.svc.cluster.local:7000",'
            f'policy="{NS}/books-readers"}} 1') in text  # fmt: skip
    assert rt.config_dump()["access_policies"] == {f"{NS}/books-readers": [WEB]}
