"""The ingress exposes only what a MeshIngress names.

Before: any client that wrote `Host: authors.booksapp.svc.cluster.local:7001` on the ingress reached the
internal authors service. Now the decision is `IngressRoutes.decide(authority, path)`, built from the
snapshot's MeshIngress resources: the pure rules first, then a real ingress proxy forwarding over mTLS
to two real inbound proxies in front of two recording apps.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import uvloop

from meshctl.api import mesh_pb2
from meshctl.identity import workload_identity
from meshctl.proxy.config import parse_proxy_config
from meshctl.proxy.errors import NotExposed
from meshctl.proxy.main import Proxy
from meshctl.proxy.policy.ingress import IngressRoutes, ingress_routes
from meshctl.proxy.policy.resolve import Destination, Router
from meshctl.proxy.runtime import ProxyRuntime, build_runtime
from tests.fakes.mesh_pki import MeshPki
from tests.ports import free_port
from tests.reliability.apps import RecordingApp

T = TypeVar("T")
NS = "booksapp"
INTERNAL = f"authors.{NS}.svc.cluster.local:7001"


def ingress_resource(spec: dict[str, Any], name: str = "shop", namespace: str = NS) -> mesh_pb2.Resource:
    return mesh_pb2.Resource(api_version="meshctl.io/v1alpha1", kind="MeshIngress", name=name, namespace=namespace,
                             spec_json=json.dumps(spec))  # fmt: skip


def services(ports: dict[str, int] | None = None) -> list[mesh_pb2.Service]:
    """webapp (7000), authors (7001), api (7002), each with one endpoint: its inbound proxy."""
    ports = ports or {}
    return [
        mesh_pb2.Service(name=name, namespace=NS, port=port, protocol="http", endpoints=[
            mesh_pb2.Endpoint(address="127.0.0.1", port=ports.get(name, 1), identity=workload_identity(name, NS),
                              pod=f"{name}-0", ready=True)])
        for name, port in (("webapp", 7000), ("authors", 7001), ("api", 7002))
    ]  # fmt: skip


def routes(*resources: mesh_pb2.Resource) -> IngressRoutes:
    snapshot = mesh_pb2.Snapshot(version=1, services=services(), resources=list(resources))
    from meshctl.proxy.policy.resolve import router_from_snapshot

    return ingress_routes(snapshot, router_from_snapshot(snapshot, "ingress-ns"))


def service_of(decide: Callable[[str, str], Destination | None], authority: str, path: str) -> str:
    try:
        dest = decide(authority, path)
    except NotExposed:
        return "404"
    return "unknown" if dest is None else dest.service


SHOP = ingress_resource({"rules": [
    {"host": "shop.example.com", "paths": [{"pathPrefix": "/", "service": "webapp"},
                                          {"pathPrefix": "/api/", "service": "api", "port": 7002}]},
    {"host": "*.example.com", "paths": [{"pathPrefix": "/static", "service": "webapp"}]},
]})  # fmt: skip


@pytest.mark.parametrize(
    ("authority", "path", "expected"),
    [
        ("shop.example.com", "/", "webapp"),
        ("SHOP.example.com.:8080", "/books?x=1", "webapp"),  # case, trailing dot and port do not matter
        ("shop.example.com", "/api", "api"),
        ("shop.example.com", "/api/v1/x", "api"),
        ("shop.example.com", "/apix", "webapp"),  # element-wise: /apix is not under /api
        ("cdn.example.com", "/static/a.css", "webapp"),
        ("cdn.example.com", "/", "404"),
        ("a.b.example.com", "/static/a.css", "404"),  # a wildcard is one label deep
        (INTERNAL, "/authors/1", "404"),  # the internal service named in Host: refused
        ("authors", "/", "404"),
        ("", "/", "404"),
        ("example.com", "/static", "404"),
    ],
)
def test_only_exposed_hosts_and_prefixes_are_reachable(authority: str, path: str, expected: str) -> None:
    assert service_of(routes(SHOP).decide, authority, path) == expected


def test_nothing_is_exposed_without_a_mesh_ingress_and_a_rule_without_host_takes_any_host() -> None:
    with pytest.raises(NotExposed, match="no MeshIngress exposes anything"):
        routes().decide("webapp", "/")
    anyhost = routes(ingress_resource({"rules": [{"paths": [{"pathPrefix": "/", "service": "webapp"}]}]}))
    assert service_of(anyhost.decide, INTERNAL, "/authors/1") == "webapp"  # Host cannot pick the service
    missing = routes(ingress_resource({"rules": [{"paths": [{"pathPrefix": "/", "service": "gone"}]}]}))
    assert service_of(missing.decide, "x", "/") == "unknown"  # exposed, but not in discovery: 503 as before
    other_ns = routes(ingress_resource({"rules": [{"paths": [{"pathPrefix": "/", "service": "webapp"}]}]},
                                       namespace="elsewhere"))  # fmt: skip
    assert service_of(other_ns.decide, "x", "/") == "unknown"  # services are looked up in the resource's namespace


def test_a_broken_resource_exposes_nothing_and_decisions_are_fresh_exceptions() -> None:
    broken = routes(mesh_pb2.Resource(kind="MeshIngress", name="bad", namespace=NS, spec_json='{"rules": 5}'))
    assert broken.empty
    shop = routes(SHOP)
    errors = []
    for _ in range(2):
        with pytest.raises(NotExposed) as raised:
            shop.decide(INTERNAL, "/")
        errors.append(raised.value)
    assert errors[0] is not errors[1] and "authors.booksapp.svc.cluster.local" in str(errors[0])
    assert Router(NS, ()).resolve("x") is None


# -- a real ingress ------------------------------------------------------------------------------------
class IngressMesh:
    """ingress proxy -> (mTLS) -> inbound proxies of webapp and authors -> their recording apps."""

    def __init__(self, apps: dict[str, RecordingApp]) -> None:
        pki = MeshPki()
        self.ports = {name: free_port() for name in apps}
        self.ingress_port = free_port()
        self.runtimes: list[ProxyRuntime] = []
        for name, app in apps.items():
            self.runtimes.append(self._runtime(pki, f"{name}-0", name, inbound=(self.ports[name], app.port)))
        self.ingress = self._runtime(pki, "ingress-0", "ingress", ingress=self.ingress_port)
        self.runtimes.append(self.ingress)
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.snapshot()
        self.proxies = self.run(self._listen())

    def _runtime(self, pki: MeshPki, pod: str, account: str, *, inbound: tuple[int, int] | None = None,
                 ingress: int | None = None) -> ProxyRuntime:  # fmt: skip
        identity = workload_identity(account, NS)
        doc: dict[str, Any] = {
            "pod": pod, "namespace": NS, "identity": identity, "admin": {"listen": f"127.0.0.1:{free_port()}"},
            "control": {"address": "127.0.0.1:1", "identity": "unused"}, "trust_anchors": "unused",
            "token_file": "unused",
        }  # fmt: skip
        if inbound is not None:
            doc["inbound"] = {"listen": f"127.0.0.1:{inbound[0]}", "app": f"127.0.0.1:{inbound[1]}"}
        if ingress is not None:
            doc["ingress"] = {"listen": f"127.0.0.1:{ingress}"}
        rt = build_runtime(parse_proxy_config(doc))
        rt.on_certificate(pki.issue(identity))
        return rt

    def snapshot(self, *resources: mesh_pb2.Resource, version: int = 1) -> None:
        snap = mesh_pb2.Snapshot(version=version, services=services(self.ports), resources=list(resources))
        for rt in self.runtimes:
            self.call(lambda rt=rt: rt.on_snapshot(snap))  # type: ignore[misc]

    async def _listen(self) -> list[Proxy]:
        proxies = [Proxy(rt.config, rt) for rt in self.runtimes]
        for proxy in proxies:
            await proxy.start_listeners()
        return proxies

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def call(self, fn: Callable[[], T]) -> T:
        async def on_loop() -> T:
            return fn()

        return self.run(on_loop())

    def get(self, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.ingress_port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": host})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        async def close() -> None:
            await asyncio.gather(*(proxy.stop() for proxy in self.proxies))

        self.run(close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def apps() -> Iterator[dict[str, RecordingApp]]:
    started = {"webapp": RecordingApp(), "authors": RecordingApp()}
    yield started
    for app in started.values():
        app.stop()


@pytest.fixture(scope="module")
def ingress(apps: dict[str, RecordingApp]) -> Iterator[IngressMesh]:
    mesh = IngressMesh(apps)
    yield mesh
    mesh.stop()


@pytest.mark.integration
def test_internal_services_are_not_reachable_through_the_ingress(
    ingress: IngressMesh, apps: dict[str, RecordingApp]
) -> None:
    ingress.snapshot(ingress_resource({"rules": [{"host": "books.example.com", "paths": [
        {"pathPrefix": "/", "service": "webapp"}]}]}), version=2)  # fmt: skip
    before = apps["webapp"].lines()
    status, _, body = ingress.get("books.example.com", "/books/1")
    assert (status, body) == (200, b"ok /books/1")
    for host in (INTERNAL, "authors", f"authors.{NS}", "webapp.booksapp.svc.cluster.local:7000"):
        status, headers, _ = ingress.get(host, "/authors/1")
        assert status == 404, (host, status)
        assert headers.get("mesh-proxy-error", "").startswith("not exposed"), headers
    assert not apps["authors"].lines()
    assert apps["webapp"].lines() == [*before, "GET /books/1 HTTP/1.1"]


@pytest.mark.integration
def test_a_rule_without_host_sends_every_host_to_the_exposed_service(
    ingress: IngressMesh, apps: dict[str, RecordingApp]
) -> None:
    ingress.snapshot(ingress_resource({"rules": [{"paths": [{"pathPrefix": "/", "service": "webapp"}]}]}), version=3)
    before = len(apps["webapp"].lines())
    status, _, body = ingress.get(INTERNAL, "/authors/7")
    assert (status, body) == (200, b"ok /authors/7")  # webapp answered, whatever Host said
    assert len(apps["webapp"].lines()) == before + 1
    assert not apps["authors"].lines()
