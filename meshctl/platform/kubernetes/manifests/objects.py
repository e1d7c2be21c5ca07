"""Small builders of Kubernetes objects shared by the control plane's and Prometheus' manifests."""

from __future__ import annotations

import base64
from typing import Any

from meshctl.platform.kubernetes.conventions import COMPONENT_LABEL, CONTROL_NS, MESH_LABEL, VERSION_LABEL

PART_OF = {"app.kubernetes.io/part-of": "meshctl"}

Manifest = dict[str, Any]


def labels(version: str, component: str | None = None) -> dict[str, str]:
    """Every object's labels; a component's objects and pods also carry the mesh's control-plane labels."""
    out = PART_OF | {VERSION_LABEL: version}
    if component is not None:
        out |= {MESH_LABEL: CONTROL_NS, COMPONENT_LABEL: component}
    return out


def metadata(name: str, version: str, component: str | None = None, *, namespaced: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if namespaced:
        out["namespace"] = CONTROL_NS
    out["labels"] = labels(version, component)
    return out


def service_account(name: str, version: str, component: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(name, version, component)}


def cluster_role(name: str, version: str, component: str, rules: list[dict[str, Any]]) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name, version, component, namespaced=False),
        "rules": rules,
    }


def cluster_role_binding(name: str, version: str, component: str) -> Manifest:
    """Binds the ClusterRole `name` to the ServiceAccount `name` of the control plane's namespace."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name, version, component, namespaced=False),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": CONTROL_NS}],
    }


def read_rule(group: str, *resources: str) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": list(resources), "verbs": ["get", "list", "watch"]}


def config_map(name: str, version: str, component: str, data: dict[str, str]) -> Manifest:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(name, version, component), "data": data}


def tls_secret(name: str, version: str, component: str, data: dict[str, str]) -> Manifest:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(name, version, component),
        "type": "kubernetes.io/tls",
        "data": encoded,
    }


def service(name: str, version: str, component: str, ports: list[tuple[str, int]]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, version, component),
        "spec": {
            "type": "ClusterIP",
            "selector": {MESH_LABEL: CONTROL_NS, COMPONENT_LABEL: component},
            "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
                      for port_name, port in ports],
        },
    }  # fmt: skip


# Restricted by the Pod Security Standards: no root, no privilege, read-only root filesystem.
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                      "capabilities": {"drop": ["ALL"]}}  # fmt: skip


def deployment(name: str, version: str, component: str, pod_spec: dict[str, Any]) -> Manifest:
    pod_labels = labels(version, component)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, version, component),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {MESH_LABEL: CONTROL_NS, COMPONENT_LABEL: component}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"serviceAccountName": name, "securityContext": POD_SECURITY} | pod_spec,
            },
        },
    }
