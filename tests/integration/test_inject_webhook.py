"""The proxy injector over real TLS: AdmissionReview documents posted to the real server, in a thread and
inside a real control plane process; its patch applied to the pod must give what `inject --manual` gives."""

from __future__ import annotations

import base64
import copy
import http.client
import json
import os
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from meshctl import __version__
from meshctl.control.webhook_server import WebhookServer
from meshctl.inject.documents import inject_documents
from meshctl.inject.pod import InjectOptions
from meshctl.platform.kubernetes import conventions as k8s
from tests.fakes.mesh_pki import MeshPki
from tests.integration.test_control_plane import ControlProcess, make_home
from tests.ports import free_port

pytestmark = pytest.mark.integration

SERVICE_NAME = f"{k8s.INJECTOR_SERVICE}.{k8s.CONTROL_NS}.svc"  # the name the API server verifies
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "generateName": "books-5d8f7c6b9-",
        "namespace": "booksapp",
        "labels": {"app": "books", "pod-template-hash": "5d8f7c6b9"},
        "annotations": {k8s.INJECT_ANNOTATION: "enabled", k8s.DEBUG_SIDECAR_ANNOTATION: "enabled"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "books-5d8f7c6b9",
                             "uid": "0b5f6f4e-7b1e-4c55-9a51-3f0f4e1a2b3c", "controller": True}],
    },
    "spec": {
        "serviceAccountName": "books",
        "containers": [{"name": "books", "image": "buoyantio/booksapp:v0.0.5",
                        "ports": [{"name": "service", "containerPort": 7002, "protocol": "TCP"}],
                        "resources": {}, "terminationMessagePath": "/dev/termination-log",
                        "imagePullPolicy": "IfNotPresent"}],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
    },
}  # fmt: skip


def review_body(obj: Any = POD, uid: str = "6f3c2d1e-0000-4000-8000-000000000001") -> bytes:
    request = {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "namespace": "booksapp",
        "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": obj,
        "oldObject": None,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}).encode()


class Pki:
    def __init__(self, directory: Path) -> None:
        self.mesh = MeshPki()
        self.cert, self.key, self.anchors = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
        self.anchors.write_bytes(self.mesh.anchors_pem)
        self.rotate()

    def rotate(self) -> None:
        issued = self.mesh.issue(SERVICE_NAME)
        self.cert.write_bytes(issued.cert_chain_pem)
        self.key.write_bytes(issued.key_pem)

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.anchors))


def connect(port: int, pki: Pki) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return pki.client().wrap_socket(raw, server_hostname=SERVICE_NAME)


def post(
    port: int, pki: Pki, body: bytes, *, path: str = k8s.INJECTOR_PATH, method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:  # fmt: skip
    """One request over TLS, the API server's way: the certificate must name the injector's Service."""
    with connect(port, pki) as tls:
        head = headers if headers is not None else {"Content-Length": str(len(body))}
        lines = [f"{method} {path}?timeout=10s HTTP/1.1", "Host: " + SERVICE_NAME, "Content-Type: application/json"]
        lines += [f"{k}: {v}" for k, v in head.items()]
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body if "Content-Length" in head else b""))
        response = http.client.HTTPResponse(tls)
        response.begin()
        return response.status, response.read()


def expected_pod() -> dict[str, Any]:
    """What `meshctl inject --manual` makes of the same pod."""
    documents, _ = inject_documents([copy.deepcopy(POD)], InjectOptions(__version__, manual=True))
    return dict(documents[0])


def apply_answer(status: int, content: bytes, uid: str = "6f3c2d1e-0000-4000-8000-000000000001") -> Any:
    assert status == 200, content
    answer = json.loads(content)
    assert (answer["apiVersion"], answer["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    response = answer["response"]
    assert (response["uid"], response["allowed"], response["patchType"]) == (uid, True, "JSONPatch")
    return jsonpatch.JsonPatch(json.loads(base64.b64decode(response["patch"]))).apply(copy.deepcopy(POD))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


@pytest.fixture
def server(pki: Pki) -> Iterator[WebhookServer]:
    webhook = WebhookServer("127.0.0.1", 0, pki.cert, pki.key)
    webhook.start()
    yield webhook
    webhook.stop()


def test_the_patch_applied_to_the_pod_gives_the_manually_injected_pod(server: WebhookServer, pki: Pki) -> None:
    patched = apply_answer(*post(server.port, pki, review_body()))
    assert patched == expected_pod()
    assert [c["name"] for c in patched["spec"]["containers"]] == [k8s.PROXY_CONTAINER, "books", k8s.DEBUG_CONTAINER]
    # the injected pod comes back on its way through the API server again: no second patch
    status, content = post(server.port, pki, review_body(patched))
    assert status == 200 and "patch" not in json.loads(content)["response"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, b"not JSON"),
        (json.dumps({"apiVersion": "v1", "kind": "Pod"}).encode(), 400, b"expected kind AdmissionReview"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}).encode(),
         400, b"request.uid"),
    ],
)  # fmt: skip
def test_a_malformed_review_is_a_400_with_the_reason(
    server: WebhookServer, pki: Pki, body: bytes, status: int, reason: bytes
) -> None:
    got, content = post(server.port, pki, body)
    assert got == status and reason in content


def test_limits_paths_and_methods(server: WebhookServer, pki: Pki) -> None:
    too_big = {"Content-Length": str(10 * 1024 * 1024)}
    assert post(server.port, pki, b"", headers=too_big)[0] == 413  # refused before reading a byte of it
    assert post(server.port, pki, b"", headers={})[0] == 411
    assert post(server.port, pki, review_body(), path="/mutate")[0] == 404
    assert post(server.port, pki, b"", method="GET", headers={})[0] == 405


def test_bad_clients_cost_the_server_nothing(server: WebhookServer, pki: Pki) -> None:
    idle = socket.create_connection(("127.0.0.1", server.port))  # connects, never says a word
    plain = socket.create_connection(("127.0.0.1", server.port))
    plain.sendall(b"POST /inject HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")  # HTTP without TLS
    truncated = connect(server.port, pki)
    truncated.sendall(b"POST /inject HTTP/1.1\r\nContent-Length: 5000\r\n\r\n{\"api")  # then goes away
    truncated.close()
    try:
        started = time.monotonic()
        patched = apply_answer(*post(server.port, pki, review_body()))
        assert patched == expected_pod() and time.monotonic() - started < 5
    finally:
        idle.close()
        plain.close()


def test_a_renewed_certificate_is_served_without_a_restart(server: WebhookServer, pki: Pki) -> None:
    def serial() -> int:
        with connect(server.port, pki) as tls:
            der = tls.getpeercert(binary_form=True)
        from cryptography import x509

        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    first = serial()
    pki.rotate()
    later = time.time() + 5
    os.utime(pki.cert, (later, later))  # a new mtime even on a coarse clock
    assert serial() != first
    apply_answer(*post(server.port, pki, review_body()))


def test_the_control_plane_serves_the_injector_when_its_config_names_one(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    pki = Pki(tmp_path)
    port = free_port()
    document = json.loads(home.control_json.read_text())
    document["webhook"] = {"listen": f"127.0.0.1:{port}", "cert": str(pki.cert), "key": str(pki.key)}
    home.control_json.write_text(json.dumps(document))
    control = ControlProcess(home).start()
    try:
        assert apply_answer(*post(port, pki, review_body())) == expected_pod()
        assert "proxy injector serving" in control.output()
    finally:
        assert control.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
