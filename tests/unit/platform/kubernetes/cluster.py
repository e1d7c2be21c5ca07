"""A meshed cluster in the fake API server: the objects `meshctl install` and `meshctl inject` create, with
a Prometheus and a control-plane admin server behind the service proxy. `healthy(fake, pods)` builds one
that passes every check; tests then break one thing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization

from meshctl import __version__
from meshctl.control.ca import generate_issuer, generate_trust_anchor
from meshctl.pki.keys import CertAndKey, private_key_pem
from meshctl.platform.kubernetes.manifests.crds import custom_resource_definitions
from tests.fakes.kube_api import FakeKubeApi

NS = "meshctl-system"
APP_NS = "booksapp"
MESH = {"meshctl.io/control-plane-ns": NS}
APPS = ("books", "authors", "webapp", "traffic")


def pem(pair: CertAndKey) -> str:
    return pair.cert.public_bytes(serialization.Encoding.PEM).decode()


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def pod(
    name: str,
    namespace: str,
    deployment: str,
    *,
    containers: tuple[str, ...],
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    index: int = 0,
) -> dict[str, Any]:
    template_hash = "5d8f7c9b4"
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": MESH | {"app": deployment, "pod-template-hash": template_hash} | (labels or {}),
            "annotations": annotations or {},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{deployment}-{template_hash}"}
            ],
        },
        "spec": {
            "serviceAccountName": deployment,
            "containers": [{"name": c, "image": f"example/{c}:1"} for c in containers],
        },
        "status": {
            "phase": "Running",
            "podIP": f"10.1.{index // 250}.{index % 250 + 1}",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
            "containerStatuses": [
                {
                    "name": c,
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                }
                for c in containers
            ],
        },
    }


def crash_loop(obj: dict[str, Any], container: str) -> None:
    obj["status"]["conditions"][1]["status"] = "False"
    for status in obj["status"]["containerStatuses"]:
        if status["name"] == container:
            status.update(
                ready=False,
                restartCount=7,
                state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting"}},
                lastState={"terminated": {"exitCode": 1, "reason": "Error"}},
            )


@dataclass
class Cluster:
    fake: FakeKubeApi
    anchor: CertAndKey
    issuer: CertAndKey
    meshed: list[dict[str, Any]] = field(default_factory=list)
    scraped: bool = True  # does Prometheus scrape every pod
    unscraped_answers: int = 0  # how many targets answers still show every pod "not scraped yet"

    def set_issuer(self, issuer: CertAndKey) -> None:
        secret = self.fake.find("v1", "secrets", "meshctl-identity-issuer", NS)
        secret["data"] = {"tls.crt": b64(pem(issuer)), "tls.key": b64(private_key_pem(issuer.key))}

    def prometheus(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        pods = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in self.meshed]
        if path == "/-/ready":
            return 200, b"Prometheus Server is Ready.\n"
        if path == "/api/v1/targets":
            health = "unknown" if self.unscraped_answers > 0 else "up"
            self.unscraped_answers -= 1
            targets = [{"labels": {"namespace": ns, "pod": name}, "health": health} for ns, name in pods]
            targets.append({"labels": {"namespace": NS, "component": "control-plane"}, "health": "up"})
            data: Any = {"activeTargets": targets if self.scraped else []}
        elif path == "/api/v1/query":
            data = {"resultType": "vector", "result": [{"metric": {"namespace": ns, "pod": n}} for ns, n in pods]}
        else:
            return 404, b"404 page not found\n"
        return 200, json.dumps({"status": "success", "data": data}).encode()

    def control_admin(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        if path == "/ready":
            return 200, b"ready\n"
        if path == "/metrics":
            return 200, f'control_build_info{{version="{__version__}"}} 1\n'.encode()
        return 404, b"not found\n"


def healthy(fake: FakeKubeApi, pods: int, *, version: str = __version__) -> Cluster:
    anchor = generate_trust_anchor(lifetime=timedelta(days=3650))
    cluster = Cluster(fake, anchor, generate_issuer(anchor, lifetime=timedelta(days=365)))
    for name in (NS, APP_NS):
        fake.add("v1", "namespaces", {"metadata": {"name": name}, "status": {"phase": "Active"}})
    for deployment, component in (("meshctl-control", "control"), ("meshctl-prometheus", "prometheus")):
        labels = {"app.kubernetes.io/version": version, "meshctl.io/control-plane-component": component}
        fake.add(
            "apps/v1",
            "deployments",
            {
                "metadata": {"name": deployment, "namespace": NS, "labels": labels},
                "spec": {"replicas": 1},
                "status": {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1},
            },
        )
        fake.add("v1", "pods", pod(f"{deployment}-0", NS, deployment, containers=(component,), labels=labels))
    fake.add(
        "v1",
        "configmaps",
        {
            "metadata": {"name": "meshctl-config", "namespace": NS},
            "data": {"config.json": '{"cert_lifetime_hours": 24}'},
        },
    )
    fake.add(
        "v1",
        "configmaps",
        {
            "metadata": {"name": "meshctl-identity-trust-anchors", "namespace": NS},
            "data": {"ca-bundle.crt": pem(anchor)},
        },
    )
    fake.add(
        "v1", "secrets", {"metadata": {"name": "meshctl-identity-issuer", "namespace": NS}, "type": "kubernetes.io/tls"}
    )
    cluster.set_issuer(cluster.issuer)
    for crd in json.loads(json.dumps(custom_resource_definitions({}))):  # what `meshctl install --crds` renders
        crd["status"] = {"conditions": [{"type": "Established", "status": "True"}]}
        fake.add("apiextensions.k8s.io/v1", "customresourcedefinitions", crd)
    fake.add(
        "meshctl.io/v1alpha1",
        "serviceprofiles",
        {
            "metadata": {"name": "books.booksapp.svc.cluster.local", "namespace": APP_NS},
            "spec": {"routes": [{"name": "GET /books", "condition": {"method": "GET", "pathRegex": "/books"}}]},
        },
    )
    fake.add(
        "discovery.k8s.io/v1",
        "endpointslices",
        {
            "metadata": {
                "name": "meshctl-control-x1",
                "namespace": NS,
                "labels": {"kubernetes.io/service-name": "meshctl-control"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.2"], "conditions": {"ready": True}}],
            "ports": [{"name": "grpc", "port": 8086}],
        },
    )
    for index in range(pods):
        app = APPS[index % len(APPS)]
        cluster.meshed.append(
            fake.add(
                "v1",
                "pods",
                pod(
                    f"{app}-{index}",
                    APP_NS,
                    app,
                    containers=(app, "meshctl-proxy"),
                    annotations={"meshctl.io/proxy-version": version},
                    index=index,
                ),
            )
        )
    fake.proxies[(NS, "meshctl-prometheus", "9090")] = cluster.prometheus
    fake.proxies[(NS, "meshctl-control", "9996")] = cluster.control_admin
    return cluster
