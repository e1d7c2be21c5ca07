"""What injection adds to a pod: the proxy, init and debug containers and the proxy's volumes.

Pure data built from conventions (the one place of names) and two facts of the pod: the app's port and
protocol. The proxy's ProxyConfig travels in an environment variable in which Kubernetes expands the
downward-API variables declared before it, so one container spec serves every replica.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from meshctl.identity import IDENTITY_INFIX, TRUST_DOMAIN, control_plane_identity
from meshctl.inject.redirect import redirect_script
from meshctl.platform.kubernetes import conventions as k8s

VOLUMES = (k8s.TOKEN_VOLUME, k8s.ANCHORS_VOLUME)
CONTAINERS = (k8s.PROXY_CONTAINER, k8s.DEBUG_CONTAINER)
PROXY_PORTS = (k8s.PROXY_INBOUND_PORT, k8s.PROXY_OUTBOUND_PORT, k8s.PROXY_ADMIN_PORT, k8s.PROXY_TAP_PORT)
DEBUG_COMMAND = ("tshark", "-i", "any", "-l", "-Y", "http or http2")  # decoded requests in `kubectl logs`


@dataclass(frozen=True)
class ProxyPlan:
    """The facts of one pod that shape its proxy."""

    workload: str  # the proxy config's "deployment": the workload's name
    app_port: int | None  # the app's first declared TCP port; None: no inbound listener
    app_protocol: str  # "http" or "grpc"
    version: str


def _var(name: str) -> str:
    return f"$({name})"


def proxy_config(plan: ProxyPlan) -> dict[str, Any]:
    """The ProxyConfig (meshctl.proxy.config) with the pod's name, namespace and account left to Kubernetes."""
    account, namespace = _var(k8s.SERVICE_ACCOUNT_ENV), _var(k8s.POD_NAMESPACE_ENV)
    config: dict[str, Any] = {
        "pod": _var(k8s.POD_NAME_ENV),
        "namespace": namespace,
        "deployment": plan.workload,
        "service_account": account,
        "identity": f"{account}.{namespace}.{IDENTITY_INFIX}.{TRUST_DOMAIN}",
    }
    if plan.app_port is not None:
        config["inbound"] = {
            "listen": f"0.0.0.0:{k8s.PROXY_INBOUND_PORT}",
            "app": f"127.0.0.1:{plan.app_port}",
            "app_protocol": plan.app_protocol,
        }
    config |= {
        "outbound": {"listen": f"127.0.0.1:{k8s.PROXY_OUTBOUND_PORT}"},
        "admin": {"listen": f"0.0.0.0:{k8s.PROXY_ADMIN_PORT}"},
        "tap": {"listen": f"0.0.0.0:{k8s.PROXY_TAP_PORT}"},
        "control": {"address": k8s.CONTROL_ADDRESS, "identity": control_plane_identity(k8s.CONTROL_NS)},
        "trust_anchors": f"{k8s.ANCHORS_DIR}/{k8s.ANCHORS_KEY}",
        "token_file": f"{k8s.TOKEN_DIR}/token",
    }
    return config


def _field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def proxy_container(plan: ProxyPlan) -> dict[str, Any]:
    return {
        "name": k8s.PROXY_CONTAINER,
        "image": f"{k8s.IMAGE_REPOSITORY}:{plan.version}",
        "command": ["python", "-m", "meshctl.proxy", "--config-env", k8s.PROXY_CONFIG_ENV],
        "env": [
            _field(k8s.POD_NAME_ENV, "metadata.name"),
            _field(k8s.POD_NAMESPACE_ENV, "metadata.namespace"),
            _field(k8s.SERVICE_ACCOUNT_ENV, "spec.serviceAccountName"),
            {"name": k8s.PROXY_CONFIG_ENV, "value": json.dumps(proxy_config(plan), separators=(",", ":"))},
        ],
        "ports": [
            {"name": "meshctl-proxy", "containerPort": k8s.PROXY_INBOUND_PORT, "protocol": "TCP"},
            {"name": "meshctl-admin", "containerPort": k8s.PROXY_ADMIN_PORT, "protocol": "TCP"},
            {"name": "meshctl-tap", "containerPort": k8s.PROXY_TAP_PORT, "protocol": "TCP"},
        ],
        "securityContext": {
            "runAsUser": k8s.PROXY_UID,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": k8s.TOKEN_VOLUME, "mountPath": k8s.TOKEN_DIR, "readOnly": True},
            {"name": k8s.ANCHORS_VOLUME, "mountPath": k8s.ANCHORS_DIR, "readOnly": True},
        ],
    }


def init_container(plan: ProxyPlan) -> dict[str, Any]:
    return {
        "name": k8s.INIT_CONTAINER,
        "image": f"{k8s.IMAGE_REPOSITORY}:{plan.version}",
        "command": ["/bin/sh", "-ec"],
        "args": [redirect_script(plan.app_port)],
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]},
        },
    }


def debug_container(plan: ProxyPlan) -> dict[str, Any]:
    """tshark on every interface of the pod, decoded HTTP in the container's log (as Linkerd's debug sidecar)."""
    return {
        "name": k8s.DEBUG_CONTAINER,
        "image": f"{k8s.DEBUG_IMAGE_REPOSITORY}:{plan.version}",
        "command": list(DEBUG_COMMAND),
        "securityContext": {"runAsUser": 0, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
    }


def volumes() -> list[dict[str, Any]]:
    token = {"audience": k8s.TOKEN_AUDIENCE, "expirationSeconds": k8s.TOKEN_EXPIRATION_S, "path": "token"}
    return [
        {"name": k8s.TOKEN_VOLUME, "projected": {"sources": [{"serviceAccountToken": token}]}},
        {"name": k8s.ANCHORS_VOLUME, "configMap": {"name": k8s.ANCHORS_CONFIG_MAP}},
    ]
