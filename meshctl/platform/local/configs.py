"""The files `up` writes before starting anything: workload tokens, each proxy's ProxyConfig and the
control plane's ControlConfig (formats in meshctl.proxy.config and meshctl.control.config).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from meshctl.control.config import hash_token
from meshctl.platform.local.state import Layout, write_atomic
from meshctl.platform.local.topology import Pod, Topology

CERT_LIFETIME_HOURS = 24
BALANCER = "ewma"


def write_tokens(layout: Layout, pods: tuple[Pod, ...]) -> dict[str, dict[str, str]]:
    """A fresh secret token per pod (0600), and the `tokens` map of control.json (only their hashes)."""
    entries: dict[str, dict[str, str]] = {}
    for pod in pods:
        token = secrets.token_urlsafe(32)
        write_atomic(layout.token(pod.pod), token, mode=0o600)
        entries[pod.pod] = {"token_sha256": hash_token(token), "identity": pod.identity}
    return entries


def proxy_config(layout: Layout, topology: Topology, pod: Pod, *, is_ingress: bool = False) -> dict[str, Any]:
    """The ProxyConfig of one pod's proxy: a sidecar (inbound + outbound) or the ingress."""
    config: dict[str, Any] = {
        "pod": pod.pod,
        "namespace": pod.namespace,
        "deployment": pod.deployment,
        "service_account": pod.service_account,
        "identity": pod.identity,
        "inbound": None,
        "outbound": None,
        "ingress": None,
        "admin": {"listen": pod.admin},
        "tap": {"listen": pod.tap},
        "control": {"address": topology.plan.control_api, "identity": topology.control_identity},
        "trust_anchors": str(layout.identity / "ca.pem"),
        "token_file": str(layout.token(pod.pod)),
        "balancer": BALANCER,
        "log_level": "info",
    }
    if is_ingress:
        config["ingress"] = {"listen": topology.ingress_listen}  # what it exposes: the demo's MeshIngress
    else:
        config["inbound"] = {"listen": pod.inbound, "app": pod.app, "app_protocol": pod.protocol}
        config["outbound"] = {"listen": pod.outbound}
    return config


def control_config(layout: Layout, topology: Topology, tokens: dict[str, dict[str, str]]) -> dict[str, Any]:
    """ControlConfig: where to listen, the CA material, the tokens and the demo's services."""
    services: dict[str, dict[str, Any]] = {}
    for pod in topology.workloads:
        assert pod.service is not None and pod.port is not None
        service = services.setdefault(
            pod.service,
            {
                "name": pod.service,
                "namespace": pod.namespace,
                "port": pod.port,
                "protocol": pod.protocol,
                "endpoints": [],
            },
        )
        service["endpoints"].append(
            {
                "address": pod.ip,
                "port": int(pod.inbound.rpartition(":")[2]),
                "pod": pod.pod,
                "identity": pod.identity,
                "labels": {"deployment": pod.deployment},
                "probe": pod.admin,  # the control plane publishes the endpoint only while its proxy is ready
            }
        )
    return {
        "listen": topology.plan.control_api,
        "admin": topology.plan.control_admin,
        "identity_dir": str(layout.identity),
        "config_dir": str(layout.config),
        "tokens": tokens,
        "services": list(services.values()),
        "cert_lifetime_hours": CERT_LIFETIME_HOURS,
        "mesh_json": str(layout.mesh_json),
    }


def write_configs(layout: Layout, topology: Topology) -> None:
    """Tokens, every ProxyConfig and control.json; the control plane re-reads control.json on change."""
    tokens = write_tokens(layout, topology.proxies)
    for pod in topology.workloads:
        write_atomic(layout.proxy_config(pod.pod), _dump(proxy_config(layout, topology, pod)))
    if topology.ingress is not None:
        ingress = proxy_config(layout, topology, topology.ingress, is_ingress=True)
        write_atomic(layout.proxy_config(topology.ingress.pod), _dump(ingress))
    write_atomic(layout.control_json, _dump(control_config(layout, topology, tokens)), mode=0o600)


def _dump(value: object) -> str:
    return json.dumps(value, indent=2) + "\n"
