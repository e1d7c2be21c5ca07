"""The control plane's manifests: its identity and configuration, its RBAC, its Deployment and Service,
and the proxy injector's MutatingWebhookConfiguration (served by the control plane on port 8443)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from meshctl.pki.pem import IdentityFiles
from meshctl.platform.kubernetes.conventions import (
    ANCHORS_CONFIG_MAP,
    ANCHORS_KEY,
    CONFIG_KEY,
    CONFIG_MAP,
    CONTROL_ADMIN_PORT,
    CONTROL_DEPLOYMENT,
    CONTROL_GRPC_PORT,
    CONTROL_NS,
    IMAGE_REPOSITORY,
    INJECT_ANNOTATION,
    INJECTOR_PATH,
    INJECTOR_PORT,
    INJECTOR_SERVICE,
    INJECTOR_TLS_DIR,
    INJECTOR_TLS_SECRET,
    INJECTOR_WEBHOOK,
    ISSUER_SECRET,
)
from meshctl.platform.kubernetes.manifests import objects
from meshctl.platform.kubernetes.manifests.crds import installed_kinds
from meshctl.platform.kubernetes.manifests.pki import IdentityMaterial, InjectorTls

COMPONENT = "control"
CONFIG_DIR = "/etc/meshctl"
IDENTITY_DIR = "/var/run/meshctl/identity"
RESOURCES_DIR = "/var/run/meshctl/resources"
# Never sent to the injector: the cluster's own namespaces and the mesh's (a webhook that injects its own
# server could keep it from starting).
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", CONTROL_NS)


def control_config() -> dict[str, Any]:
    """The control plane's control.json (meshctl.control.config), as the pod sees its files."""
    return {
        "listen": f"0.0.0.0:{CONTROL_GRPC_PORT}",
        "admin": f"0.0.0.0:{CONTROL_ADMIN_PORT}",
        "identity_dir": IDENTITY_DIR,
        "config_dir": RESOURCES_DIR,
        "cert_lifetime_hours": 24,
        "log_level": "info",
    }


def _rules() -> list[dict[str, Any]]:
    """What the control plane reads (discovery, configuration) and the token reviews of workload identity."""
    by_group: dict[str, list[str]] = {}
    for definition in installed_kinds():
        by_group.setdefault(definition.api_version.partition("/")[0], []).append(definition.plural)
    return [
        objects.read_rule("", "pods", "services", "endpoints", "namespaces"),
        objects.read_rule("discovery.k8s.io", "endpointslices"),
        objects.read_rule("apiextensions.k8s.io", "customresourcedefinitions"),
        *(objects.read_rule(group, *plurals) for group, plurals in by_group.items()),
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    ]


def _identity_volume() -> dict[str, Any]:
    """The issuer and the anchors, under the file names the control plane's CA reads."""
    files = IdentityFiles(Path(IDENTITY_DIR))
    return {
        "name": "identity",
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"configMap": {"name": ANCHORS_CONFIG_MAP, "items": [{"key": ANCHORS_KEY,
                                                                       "path": files.anchor_cert.name}]}},
                {"secret": {"name": ISSUER_SECRET, "items": [{"key": "tls.crt", "path": files.issuer_cert.name},
                                                             {"key": "tls.key", "path": files.issuer_key.name}]}},
            ],
        },
    }  # fmt: skip


def _pod_spec(version: str) -> dict[str, Any]:
    container = {
        "name": COMPONENT,
        "image": f"{IMAGE_REPOSITORY}:{version}",
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "meshctl.control", "--config", f"{CONFIG_DIR}/{CONFIG_KEY}"],
        "ports": [
            {"name": "grpc", "containerPort": CONTROL_GRPC_PORT, "protocol": "TCP"},
            {"name": "admin", "containerPort": CONTROL_ADMIN_PORT, "protocol": "TCP"},
            {"name": "webhook", "containerPort": INJECTOR_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "admin"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/live", "port": "admin"}, "periodSeconds": 10, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": objects.CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "identity", "mountPath": IDENTITY_DIR, "readOnly": True},
            {"name": "injector-tls", "mountPath": INJECTOR_TLS_DIR, "readOnly": True},
            {"name": "resources", "mountPath": RESOURCES_DIR},
        ],
    }
    return {
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": CONFIG_MAP}},
            _identity_volume(),
            {"name": "injector-tls", "secret": {"secretName": INJECTOR_TLS_SECRET, "defaultMode": 0o440}},
            {"name": "resources", "emptyDir": {}},
        ],
    }


def _not_disabled(*, exclude_system: bool) -> dict[str, Any]:
    # Selectors see labels only: a pod or namespace labelled `meshctl.io/inject: disabled` is never sent;
    # for the rest the injector reads the annotation (`enabled` on the pod template or its namespace).
    expressions: list[dict[str, Any]] = [{"key": INJECT_ANNOTATION, "operator": "NotIn", "values": ["disabled"]}]
    if exclude_system:
        expressions.append(
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(SYSTEM_NAMESPACES)}
        )
    return {"matchExpressions": expressions}


def injector_webhook(version: str, ca_pem: str) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": objects.metadata(INJECTOR_WEBHOOK, version, COMPONENT, namespaced=False),
        "webhooks": [
            {
                "name": f"proxy-injector.{CONTROL_NS}.meshctl.io",
                "clientConfig": {
                    "service": {"name": INJECTOR_SERVICE, "namespace": CONTROL_NS, "path": INJECTOR_PATH,
                                "port": INJECTOR_PORT},
                    "caBundle": base64.b64encode(ca_pem.encode()).decode(),
                },
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
                           "scope": "Namespaced"}],
                "namespaceSelector": _not_disabled(exclude_system=True),
                "objectSelector": _not_disabled(exclude_system=False),
                "failurePolicy": "Ignore",  # a control plane that is down must not stop pods from starting
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": "Never",
                "timeoutSeconds": 10,
            }
        ],
    }  # fmt: skip


def control_plane(version: str, identity: IdentityMaterial, injector: InjectorTls) -> list[dict[str, Any]]:
    """The control plane's objects but the webhook (which should come last, once its server is there)."""
    name = CONTROL_DEPLOYMENT
    return [
        objects.service_account(name, version, COMPONENT),
        objects.cluster_role(name, version, COMPONENT, _rules()),
        objects.cluster_role_binding(name, version, COMPONENT),
        objects.config_map(CONFIG_MAP, version, COMPONENT, {CONFIG_KEY: json.dumps(control_config(), indent=2)}),
        objects.config_map(ANCHORS_CONFIG_MAP, version, COMPONENT, {ANCHORS_KEY: identity.anchors_pem}),
        objects.tls_secret(ISSUER_SECRET, version, COMPONENT,
                           {"tls.crt": identity.issuer_cert_pem, "tls.key": identity.issuer_key_pem}),
        objects.tls_secret(INJECTOR_TLS_SECRET, version, COMPONENT,
                           {"tls.crt": injector.cert_pem, "tls.key": injector.key_pem, "ca.crt": injector.ca_pem}),
        objects.service(INJECTOR_SERVICE, version, COMPONENT,
                        [("grpc", CONTROL_GRPC_PORT), ("admin", CONTROL_ADMIN_PORT), ("webhook", INJECTOR_PORT)]),
        objects.deployment(name, version, COMPONENT, _pod_spec(version)),
    ]  # fmt: skip
