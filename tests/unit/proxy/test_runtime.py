"""The runtime: readiness, snapshot and certificate updates, ingress fallback, TLS material."""

from __future__ import annotations

import json
import ssl
from typing import Any

import pytest

from meshctl.api import mesh_pb2
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.errors import NotExposed
from meshctl.proxy.runtime import build_runtime
from meshctl.proxy.tls import build_contexts
from tests.fakes.mesh_pki import MeshPki
from tests.unit.proxy.test_config import EXAMPLE


@pytest.fixture(scope="module")
def pki() -> MeshPki:
    return MeshPki()


def snapshot(version: int = 1) -> mesh_pb2.Snapshot:
    return mesh_pb2.Snapshot(
        version=version,
        services=[
            mesh_pb2.Service(name="books", namespace="booksapp", port=7000, protocol="http", endpoints=[
                mesh_pb2.Endpoint(address="127.0.0.1", port=4143, identity="b", pod="books-0", ready=True)]),
            mesh_pb2.Service(name="webapp", namespace="booksapp", port=7000, protocol="http"),
        ],
    )  # fmt: skip


def test_ready_needs_certificate_and_snapshot(pki: MeshPki) -> None:
    config = parse_proxy_config(EXAMPLE)
    runtime = build_runtime(config)
    assert not runtime.ready
    seen: list[Any] = []
    runtime.when_certificate(seen.append)
    runtime.on_snapshot(snapshot())
    assert not runtime.ready and runtime.local is not None and runtime.local.service == "books"
    runtime.on_certificate(pki.issue(config.identity))
    assert runtime.ready and len(seen) == 1
    dump = runtime.config_dump()
    assert dump["snapshot_version"] == 1 and dump["certificate"]["identity"] == config.identity


def test_bad_certificate_keeps_the_old_one(pki: MeshPki) -> None:
    runtime = build_runtime(parse_proxy_config(EXAMPLE))
    good = pki.issue(EXAMPLE["identity"])
    runtime.on_certificate(good)
    before = runtime.tls
    other = MeshPki().issue(EXAMPLE["identity"])
    broken = type(good)(b"not a key", other.cert_chain_pem, other.trust_anchors_pem, "x", other.not_after)
    runtime.on_certificate(broken)
    assert runtime.tls is before


def test_ingress_exposes_only_what_a_mesh_ingress_names() -> None:
    raw = {**EXAMPLE, "inbound": None, "outbound": None, "ingress": {"listen": "127.0.0.1:8080"}}
    runtime = build_runtime(parse_proxy_config(raw))
    runtime.on_snapshot(snapshot())
    with pytest.raises(NotExposed, match="no MeshIngress exposes anything"):
        runtime.resolve_ingress("webapp", "/")
    exposing = snapshot(2)
    spec = {"rules": [{"paths": [{"pathPrefix": "/", "service": "webapp"}]}]}
    exposing.resources.append(
        mesh_pb2.Resource(kind="MeshIngress", name="web", namespace="booksapp", spec_json=json.dumps(spec))
    )
    runtime.on_snapshot(exposing)
    assert runtime.resolve_ingress("example.com", "/books").service == "webapp"  # type: ignore[union-attr]
    # Naming an internal service in Host reaches the exposed one, never the named one.
    assert runtime.resolve_ingress("books.booksapp.svc.cluster.local:7000").service == "webapp"  # type: ignore[union-attr]
    assert runtime.rescue(NotExposed("x")).http_status == 404
    assert runtime.resolve("example.com") is None


def test_balancers_follow_snapshots() -> None:
    runtime = build_runtime(parse_proxy_config(EXAMPLE))
    runtime.on_snapshot(snapshot(1))
    dest = runtime.resolve("books")
    assert dest is not None
    assert runtime.balancer(dest) is runtime.balancer(dest)
    runtime.on_snapshot(mesh_pb2.Snapshot(version=2))
    assert runtime.resolve("books") is None and runtime.snapshot_version == 2


def test_tls_contexts(pki: MeshPki) -> None:
    contexts = build_contexts(pki.issue("books.booksapp.serviceaccount.identity.meshctl.cluster.local"))
    assert contexts.server.minimum_version == ssl.TLSVersion.TLSv1_3
    assert contexts.server.verify_mode == ssl.CERT_REQUIRED
    assert contexts.client_h1.check_hostname and contexts.client_h1.verify_mode == ssl.CERT_REQUIRED
