"""`meshctl --platform kubernetes debug` against the fake API server: the ephemeral debug container goes
in through the real `pods/{name}/ephemeralcontainers` subresource, the command waits for the kubelet to
report it running, and every way it can fail ends in one line with a hint. The fake's subresource itself
is held to what kube-apiserver accepts and refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meshctl import __version__
from meshctl.cli.app import main
from tests.fakes.kube_api import FakeKubeApi
from tests.unit.platform.kubernetes.cluster import APP_NS, healthy

pytestmark = pytest.mark.integration
SMP = "application/strategic-merge-patch+json"


@pytest.fixture
def fake() -> Iterator[FakeKubeApi]:
    server = FakeKubeApi().start()
    server.kubelet.start_s = 0.8  # long enough to be seen waiting
    healthy(server, 8)  # books-0 and books-4 back deploy/books
    yield server
    server.stop()


def run(fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
        capsys.readouterr()
        code = main(["--platform", "kubernetes", "debug", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pod(fake: FakeKubeApi, name: str) -> dict[str, Any]:
    return fake.find("v1", "pods", name, APP_NS)


def test_a_deployment_gets_a_debug_container_in_each_pod(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(fake, tmp_path, capsys, "deploy/books", "-n", APP_NS)
    assert code == 0, err
    for name in ("books-0", "books-4"):
        (container,) = pod(fake, name)["spec"]["ephemeralContainers"]
        assert container["name"] == "meshctl-debug"
        assert container["image"] == f"ghcr.io/meshctl/debug:{__version__}"
        assert container["targetContainerName"] == "meshctl-proxy"
        assert set(container["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
        assert f"kubectl -n {APP_NS} exec -it {name} -c meshctl-debug -- tshark -i any" in out
        assert f"kubectl -n {APP_NS} attach -it {name} -c meshctl-debug" in out
        path = f"PATCH /api/v1/namespaces/{APP_NS}/pods/{name}/ephemeralcontainers"
        assert fake.requests[path] == 1
    assert "waiting for meshctl-debug in booksapp/books-0: ContainerCreating" in err
    assert "pod/authors" not in out and "authors-1" not in out  # only the target's pods

    # Ephemeral containers cannot be changed or removed: a second run reuses them, without a PATCH.
    code, out, err = run(fake, tmp_path, capsys, "pod/books-0", "-n", APP_NS)
    assert code == 0, err
    assert "booksapp/books-0: meshctl-debug already there" in out
    assert fake.requests[f"PATCH /api/v1/namespaces/{APP_NS}/pods/books-0/ephemeralcontainers"] == 1
    code, out, err = run(fake, tmp_path, capsys, "pod/books-4", "-n", APP_NS, "-o", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["pod"] == "books-4" and document["how"] == "already there"
    assert document["commands"][0] == f"kubectl -n {APP_NS} exec -it books-4 -c meshctl-debug -- tshark -i any"


def test_a_container_that_cannot_start_is_one_line_with_a_hint(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.kubelet.stuck = {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
    code, out, err = run(fake, tmp_path, capsys, "pod/books-0", "-n", APP_NS)
    assert code == 1
    assert "cannot run: ImagePullBackOff: Back-off pulling image" in err
    assert "hint: " in err and "describe pod books-0" in err and "Traceback" not in err


def test_waiting_is_bounded_by_the_timeout(
    fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.kubelet.start_s = 30.0
    code, _, err = run(fake, tmp_path, capsys, "pod/books-0", "-n", APP_NS, "--timeout", "1s")
    assert code == 4
    assert "is not running after 1s (ContainerCreating)" in err and "--timeout" in err


def test_refusals(fake: FakeKubeApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake.judge = lambda attributes: attributes.get("subresource") != "ephemeralcontainers"
    code, _, err = run(fake, tmp_path, capsys, "pod/books-0", "-n", APP_NS)
    assert code == 1 and 'cannot patch resource "pods/ephemeralcontainers"' in err and "RBAC" in err
    code, _, err = run(fake, tmp_path, capsys, "pod/nope", "-n", APP_NS)
    assert code == 2 and "no meshed pod matches pod/nope" in err
    code, _, err = run(fake, tmp_path, capsys, "pod/books-0", "-n", APP_NS, "--write", str(tmp_path / "x.pcap"))
    assert code == 2 and "kubectl exec" in err
    assert "Traceback" not in err


def patch(fake: FakeKubeApi, name: str, body: Any, content_type: str = SMP) -> tuple[int, dict[str, Any]]:
    path = f"/api/v1/namespaces/{APP_NS}/pods/{name}/ephemeralcontainers"
    status, raw = fake.handle("PATCH", path, {}, json.dumps(body).encode(), content_type)
    return status, json.loads(raw)


def debug(name: str = "dbg", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox"} | extra


def test_the_fake_subresource_refuses_what_the_api_server_refuses(fake: FakeKubeApi) -> None:
    assert patch(fake, "books-0", {"spec": {"ephemeralContainers": [debug()]}}, "application/json")[0] == 415
    status, answer = patch(fake, "books-0", {"spec": {"containers": []}})
    assert status == 422 and "may not change fields other than" in answer["message"]
    status, answer = patch(fake, "books-0", {"spec": {"ephemeralContainers": [debug("books")]}})
    assert status == 422 and 'Duplicate value: "books"' in answer["message"]
    status, answer = patch(fake, "books-0", {"spec": {"ephemeralContainers": [debug(targetContainerName="x")]}})
    assert status == 422 and 'targetContainerName: Not found: "x"' in answer["message"]
    status, answer = patch(fake, "books-0", {"spec": {"ephemeralContainers": [debug(ports=[{"containerPort": 1}])]}})
    assert status == 422 and "ports: Forbidden" in answer["message"]
    assert patch(fake, "books-0", {"spec": {"ephemeralContainers": [{"name": "x"}]}})[0] == 422  # no image

    status, answer = patch(fake, "books-0", {"spec": {"ephemeralContainers": [debug()]}})
    assert status == 200 and answer["kind"] == "Pod"
    assert answer["status"]["ephemeralContainerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    status, answer = patch(fake, "books-0", {"spec": {"ephemeralContainers": []}}, "application/merge-patch+json")
    assert status == 422 and 'existing ephemeral containers "dbg" may not be removed' in answer["message"]
    status, answer = patch(fake, "books-0", {"spec": {"ephemeralContainers": [debug(image="other")]}})
    assert status == 422 and "may not be changed" in answer["message"]
    add = [{"op": "add", "path": "/spec/ephemeralContainers/-", "value": debug("dbg2")}]
    status, answer = patch(fake, "books-0", add, "application/json-patch+json")
    assert status == 200 and [c["name"] for c in answer["spec"]["ephemeralContainers"]] == ["dbg", "dbg2"]
    status, raw = fake.handle("GET", f"/api/v1/namespaces/{APP_NS}/pods/books-0/ephemeralcontainers", {}, b"")
    assert status == 200 and len(json.loads(raw)["spec"]["ephemeralContainers"]) == 2
    assert patch(fake, "absent", {"spec": {"ephemeralContainers": [debug()]}})[0] == 404
