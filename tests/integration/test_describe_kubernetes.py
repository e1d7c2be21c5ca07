"""`meshctl get` and `describe` on the kubernetes platform, against the fake API server speaking the real
REST protocol through the official client: the mesh's custom objects listed as kubectl lists them, a
workload's services found by their selectors, and its live state read through pod port-forwards from real
admin endpoints (one client's real circuit breaker has ejected a books endpoint)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshctl.cli.app import main
from meshctl.metrics.admin import AdminApp, listen_address, start_admin_server, stop_admin_server
from meshctl.metrics.registry import ProxyMetrics
from meshctl.platform.kubernetes.conventions import PROXY_ADMIN_PORT
from meshctl.proxy.policy.breaker import Breaker
from meshctl.resources import KINDS
from meshctl.resources.failure_accrual import FailureAccrual
from meshctl.resources.names import plural_of
from tests.fakes.kube_api import FakeKubeApi
from tests.unit.platform.kubernetes.cluster import APP_NS, healthy

pytestmark = pytest.mark.integration

AUTHORITY = "books.booksapp.svc.cluster.local:7002"
BOOKS_ENDPOINTS = ["10.1.0.1:4143 books-0", "10.1.0.5:4143 books-4"]


class AdminServer:
    """A proxy's real admin endpoint on 127.0.0.1 (its own loop in a thread), serving a given config dump."""

    def __init__(self, dump: dict[str, Any]) -> None:
        self.app = AdminApp(metrics=ProxyMetrics(), ready=lambda: True, get_log_level=lambda: "info",
                            set_log_level=lambda level: None, config_dump=lambda: dump)  # fmt: skip
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="admin", daemon=True)
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(start_admin_server("127.0.0.1", 0, self.app), self.loop)
        self.server = started.result(10.0)
        self.port = listen_address(self.server)[1]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(stop_admin_server(self.server, grace_s=0.5), self.loop).result(10.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10.0)
        self.loop.close()


def _dump(breakers: dict[str, Any]) -> dict[str, Any]:
    return {"ready": True, "snapshot_version": 7, "certificate": {"identity": "x"},
            "endpoints": {AUTHORITY: BOOKS_ENDPOINTS}, "circuit_breakers": breakers}  # fmt: skip


def _ejecting_breaker() -> dict[str, Any]:
    """A real breaker's dump after books-4's endpoint failed twice in a row."""
    now = [100.0]
    breaker = Breaker(FailureAccrual(2, "30s", 30.0, "1m", 60.0), lambda: now[0])
    for _ in range(2):
        breaker.outcome("10.1.0.5:4143", True)
    breaker.outcome("10.1.0.1:4143", False)
    now[0] += 5.0
    return breaker.to_json()


def crd(kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of one of our kinds, as `meshctl install` renders it."""
    definition = KINDS[kind]
    group, _, version = definition.api_version.partition("/")
    return {"metadata": {"name": f"{plural_of(definition)}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": plural_of(definition), "kind": kind},
                     "versions": [{"name": version, "served": True, "storage": True}]}}  # fmt: skip


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeKubeApi, Path]]:
    fake = FakeKubeApi().start()
    healthy(fake, 5)  # books-0, authors-1, webapp-2, traffic-3, books-4; and one ServiceProfile of books
    # A cluster whose MeshIngress CRD is missing: get and describe must name it, not fail.
    fake.remove("apiextensions.k8s.io/v1", "customresourcedefinitions", "meshingresses.meshctl.io")
    for kind in ("TrafficSplit", "FaultInjection", "TrafficTarget", "HTTPRouteGroup"):
        fake.add("apiextensions.k8s.io/v1", "customresourcedefinitions", crd(kind))
    for service in ("books", "webapp", "authors"):
        fake.add("v1", "services", {"metadata": {"name": service, "namespace": APP_NS},
                                    "spec": {"selector": {"app": service}, "ports": [{"port": 7000}]}})  # fmt: skip
    fake.add("meshctl.io/v1alpha1", "faultinjections", {
        "metadata": {"name": "books-faults", "namespace": APP_NS, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"service": "books", "abort": {"percent": 5}}})  # fmt: skip
    fake.add("meshctl.io/v1alpha1", "faultinjections", {
        "metadata": {"name": "broken", "namespace": APP_NS}, "spec": {"service": "books"}})  # fmt: skip
    fake.add("access.smi-spec.io/v1alpha3", "traffictargets", {
        "metadata": {"name": "books-callers", "namespace": APP_NS},
        "spec": {"destination": {"kind": "ServiceAccount", "name": "books"},
                 "rules": [{"kind": "HTTPRouteGroup", "name": "everything"}],
                 "sources": [{"kind": "ServiceAccount", "name": "webapp"}]}})  # fmt: skip
    fake.add("specs.smi-spec.io/v1alpha4", "httproutegroups", {
        "metadata": {"name": "everything", "namespace": APP_NS}, "spec": {"matches": [{"name": "all"}]}})  # fmt: skip
    servers = [AdminServer(_dump({})), AdminServer(_dump({AUTHORITY: _ejecting_breaker()}))]
    fake.forward_to(APP_NS, "books-0", PROXY_ADMIN_PORT, ("127.0.0.1", servers[0].port))
    fake.forward_to(APP_NS, "webapp-2", PROXY_ADMIN_PORT, ("127.0.0.1", servers[1].port))
    yield fake, fake.kubeconfig(tmp_path / "kubeconfig")
    for server in servers:
        server.stop()
    fake.stop()


def run(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(config))
        capsys.readouterr()
        code = main(["--platform", "kubernetes", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_get_lists_the_clusters_custom_objects(cluster: tuple[FakeKubeApi, Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    fake, config = cluster
    code, out, err = run(config, capsys, "get", "sp", "-n", APP_NS, "-o", "json")
    names = [item["metadata"]["name"] for item in json.loads(out)["items"]]
    assert code == 0 and names == ["books.booksapp.svc.cluster.local"]
    code, out, err = run(config, capsys, "get", "faultinjections", "-A", "-o", "wide")
    assert code == 0 and out.splitlines()[1].split()[:2] == [APP_NS, "books-faults"] and "cluster" in out
    assert "broken" in err and "expected abort, delay or both" in err  # named, not listed
    code, out, err = run(config, capsys, "get", "mi", "-n", APP_NS)
    assert code == 2 and "no resource type meshingresses" in err and "meshctl install" in err
    assert fake.requests[f"GET /apis/meshctl.io/v1alpha1/namespaces/{APP_NS}/serviceprofiles"] == 1


def test_describe_a_deployment_resources_and_live_state(cluster: tuple[FakeKubeApi, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    _, config = cluster
    code, out, err = run(config, capsys, "describe", "deploy/books", "-n", APP_NS, "-o", "json")
    assert code == 0, err
    document = json.loads(out)
    assert (document["services"], document["serviceAccounts"]) == (["books"], ["books"])
    assert document["instances"] == ["books-0", "books-4"]
    found = {(f["aspect"], f["from"].get("name")) for view in document["policies"] for f in view["findings"]}
    assert {("route", "books.booksapp.svc.cluster.local"), ("fault", "books-faults"),
            ("access", "books-callers")} <= found  # fmt: skip
    assert all(f["from"].get("file") is None for view in document["policies"] for f in view["findings"])
    assert any("broken" in problem for problem in document["problems"])
    assert any("meshingresses" in problem for problem in document["problems"])  # that CRD is not installed

    live = document["live"]
    assert [s["pod"] for s in live["instances"]] == ["books-0"]
    assert live["endpoints"] == {AUTHORITY: BOOKS_ENDPOINTS}
    (breaker,) = live["circuitBreakers"]
    ejected = [e for e in breaker["endpoints"] if e["state"] == "ejected"]
    assert breaker["client"] == "webapp-2" and [e["pod"] for e in ejected] == ["books-4"]
    assert ejected[0]["ejectedForSeconds"] == 25.0
    assert set(live["unreachable"]) == {"authors-1", "books-4", "traffic-3"}  # no admin endpoint behind them
    assert "warning: the proxy of books-4 could not be read" in err
    assert "warning: the cluster has no resource type meshingresses" in err


def test_describe_a_service_without_meshed_pods_and_a_missing_deployment(
    cluster: tuple[FakeKubeApi, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = cluster
    code, out, err = run(config, capsys, "describe", "svc/ratings", "-n", APP_NS, "--no-live")
    assert code == 0, err
    assert "Instances:          none meshed" in out and "every request: the service has no ServiceProfile" in out
    code, out, err = run(config, capsys, "describe", "deploy/ratings", "-n", APP_NS)
    assert code == 2 and "no meshed pod matches deploy/ratings" in err
