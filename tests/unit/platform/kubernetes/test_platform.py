"""The kubernetes platform without sockets: pods read from list JSON, status and proxies built from one
listing, the catalogue's shape, and the fake API server's REST routing (called directly)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshctl.errors import UnreachableError
from meshctl.health.registry import Mode, catalogue
from meshctl.identity import workload_identity
from meshctl.platform.kubernetes.platform import KubernetesPlatform, pods_of
from meshctl.platform.kubernetes.pods import parse_pod
from tests.fakes.kube_api import FakeKubeApi, _matches_labels
from tests.unit.platform.kubernetes.cluster import NS, crash_loop, healthy, pod


class InMemoryApi:
    """KubeApi's surface over the fake's request handler: the same JSON, no HTTP."""

    def __init__(self, fake: FakeKubeApi) -> None:
        self.fake = fake
        self.context = "memory"
        self.server = "memory://"
        self.paths: list[str] = []

    def get(self, path: str, query: dict[str, str] | None = None, *, timeout_s: float = 1.0) -> Any:
        self.paths.append(path)
        segments_path = path
        status, body = self.fake.handle("GET", segments_path, query or {}, b"")
        assert status == 200, body
        return json.loads(body)

    def list(self, path: str, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get(path, query)["items"]
        return items


def platform(fake: FakeKubeApi, namespace: str | None = None) -> tuple[KubernetesPlatform, InMemoryApi]:
    api = InMemoryApi(fake)
    return KubernetesPlatform(api, namespace), api  # type: ignore[arg-type]


def test_pod_parsing_derives_deployment_readiness_and_problems() -> None:
    document = pod("books-7", "booksapp", "books", containers=("books", "meshctl-proxy"), index=7)
    parsed = parse_pod(document)
    assert (parsed.deployment, parsed.ready, parsed.ip, parsed.problem()) == ("books", True, "10.1.0.8", None)
    assert parsed.proxy is not None and parsed.proxy.ready
    crash_loop(document, "meshctl-proxy")
    parsed = parse_pod(document)
    assert not parsed.ready and parsed.proxy is not None and not parsed.proxy.ready
    assert parsed.problem() == (
        "booksapp/books-7: container meshctl-proxy is in CrashLoopBackOff after 7 restarts, last exit code 1 (Error)"
    )
    assert "meshctl-proxy CrashLoopBackOff" in parsed.not_ready()


def test_status_and_proxies_come_from_one_listing_each() -> None:
    fake = FakeKubeApi()
    healthy(fake, 40)
    kube, api = platform(fake)
    status = kube.status()
    assert api.paths == ["/api/v1/pods"]
    kinds = {c.kind for c in status.components}
    assert kinds == {"control-plane", "prometheus", "workload"} and status.all_running
    assert len(pods_of(status)) == 42
    proxies = kube.proxies()
    assert len(proxies) == 40 and api.paths[-1] == "/api/v1/pods"
    first = proxies[0]
    assert first.identity == workload_identity("books", "booksapp") and first.admin == "10.1.0.1:4191"


def test_minus_n_lists_one_namespace_and_no_control_plane_means_no_mesh() -> None:
    fake = FakeKubeApi()
    healthy(fake, 4)
    kube, api = platform(fake, "booksapp")
    assert len(kube.proxies()) == 4 and api.paths == ["/api/v1/namespaces/booksapp/pods"]
    for name in ("meshctl-control-0", "meshctl-prometheus-0"):
        fake.remove("v1", "pods", name, NS)
    with pytest.raises(UnreachableError, match="no mesh control plane runs"):
        kube.status()


def test_fake_speaks_list_shapes_selectors_and_status_objects() -> None:
    fake = FakeKubeApi()
    healthy(fake, 3)
    status, body = fake.handle(
        "GET", "/api/v1/namespaces/booksapp/pods", {"fieldSelector": "metadata.name=books-0"}, b""
    )
    document = json.loads(body)
    assert status == 200 and document["kind"] == "PodList" and document["apiVersion"] == "v1"
    assert [p["metadata"]["name"] for p in document["items"]] == ["books-0"]
    status, body = fake.handle("GET", "/api/v1/namespaces/meshctl-system/secrets/absent", {}, b"")
    assert status == 404 and json.loads(body)["kind"] == "Status" and json.loads(body)["reason"] == "NotFound"
    status, _ = fake.handle("GET", "/apis/meshctl.io/v1alpha1/serviceprofiles", {}, b"")
    assert status == 200
    fake.remove("apiextensions.k8s.io/v1", "customresourcedefinitions", "serviceprofiles.meshctl.io")
    status, _ = fake.handle("GET", "/apis/meshctl.io/v1alpha1/serviceprofiles", {}, b"")
    assert status == 404  # a custom resource is served only while its CRD exists
    assert _matches_labels({"a": "1"}, "a=1,!b") and not _matches_labels({"a": "1"}, "a!=1")


def test_catalogue_uses_kubernetes_codes_and_shares_identity_and_prometheus() -> None:
    categories = catalogue("kubernetes")
    modes = {mode for category in categories for mode in category.modes}
    assert modes == {Mode.PRE, Mode.INSTALLED, Mode.PROXY}
    by_id = {category.id: category for category in categories}
    assert [c.code for c in by_id["mesh-identity"].checks] == [f"MC400{n}" for n in range(1, 10)]
    assert [c.code for c in by_id["prometheus"].checks] == ["MC6001", "MC6002", "MC6003", "MC6004"]
    own = [c for category in categories if category.id.startswith("kubernetes") for c in category.checks]
    assert all(c.kubernetes_only for c in own if c.code != "MC8004")


def test_missing_kubeconfig_fails_mc1100_without_a_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshctl.cli.app import main

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    code = main(["--platform", "kubernetes", "check"])
    out = capsys.readouterr().out
    assert code == 1
    assert "× the kubeconfig names a usable context" in out
    assert f"no kubeconfig for the kubernetes platform: {tmp_path / 'absent'} does not exist" in out
