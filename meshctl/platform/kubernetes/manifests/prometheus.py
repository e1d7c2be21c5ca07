"""The mesh's Prometheus in a cluster: it finds every proxy and the control plane by pod discovery and
relabels them with the labels the local mesh's static targets carry (namespace, pod, deployment,
component), so `routes`, `stat` and `check` send the same queries on both platforms."""

from __future__ import annotations

import re
from typing import Any

from meshctl.platform.kubernetes.conventions import (
    COMPONENT_LABEL,
    CONTROL_NS,
    PROMETHEUS_CONFIG_KEY,
    PROMETHEUS_CONFIG_MAP,
    PROMETHEUS_DEPLOYMENT,
    PROMETHEUS_IMAGE,
    PROMETHEUS_PORT,
    PROXY_ADMIN_PORT,
    PROXY_CONTAINER,
)
from meshctl.platform.kubernetes.manifests import objects
from meshctl.platform.local.prometheus import COMPONENT_LABEL as TARGET_COMPONENT_LABEL
from meshctl.platform.local.prometheus import (
    CONTROL_COMPONENT,
    CONTROL_JOB,
    DEPLOYMENT_LABEL,
    NAMESPACE_LABEL,
    POD_LABEL,
    PROXY_COMPONENT,
    PROXY_JOB,
    RETENTION,
    SCRAPE_INTERVAL,
    SCRAPE_TIMEOUT,
)

COMPONENT = "prometheus"
CONFIG_DIR = "/etc/prometheus"
DATA_DIR = "/prometheus"


def _pod_label(label: str) -> str:
    """The discovery meta label of a pod label (Prometheus turns every other character into _)."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


def _target_labels(component: str) -> list[dict[str, Any]]:
    return [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": NAMESPACE_LABEL},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": POD_LABEL},
        # the ReplicaSet that owns the pod, less its pod-template-hash suffix: the deployment
        {"source_labels": ["__meta_kubernetes_pod_controller_kind", "__meta_kubernetes_pod_controller_name"],
         "regex": "ReplicaSet;(.+)-[^-]+", "replacement": "$1", "target_label": DEPLOYMENT_LABEL},
        {"target_label": TARGET_COMPONENT_LABEL, "replacement": component},
    ]  # fmt: skip


def scrape_config() -> dict[str, Any]:
    """prometheus.yml: every meshed pod's proxy admin port, and the control plane's admin port."""
    control = {
        "job_name": CONTROL_JOB,
        "metrics_path": "/metrics",
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [CONTROL_NS]}}],
        "relabel_configs": [
            {"source_labels": [_pod_label(COMPONENT_LABEL), "__meta_kubernetes_pod_container_port_name"],
             "action": "keep", "regex": "control;admin"},
            *_target_labels(CONTROL_COMPONENT),
        ],
    }  # fmt: skip
    proxies = {
        "job_name": PROXY_JOB,
        "metrics_path": "/metrics",
        "kubernetes_sd_configs": [{"role": "pod"}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_pod_container_name", "__meta_kubernetes_pod_container_port_number"],
             "action": "keep", "regex": f"{PROXY_CONTAINER};{PROXY_ADMIN_PORT}"},
            *_target_labels(PROXY_COMPONENT),
        ],
    }  # fmt: skip
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_TIMEOUT,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "scrape_configs": [
            control,
            proxies,
            {"job_name": "prometheus", "static_configs": [{"targets": [f"localhost:{PROMETHEUS_PORT}"]}]},
        ],
    }


def _pod_spec() -> dict[str, Any]:
    container = {
        "name": COMPONENT,
        "image": PROMETHEUS_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            f"--config.file={CONFIG_DIR}/{PROMETHEUS_CONFIG_KEY}",
            f"--storage.tsdb.path={DATA_DIR}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address=0.0.0.0:{PROMETHEUS_PORT}",
            "--log.level=info",
        ],
        "ports": [{"name": "web", "containerPort": PROMETHEUS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "web"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "2Gi"}},
        "securityContext": objects.CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
        ],
    }
    return {
        "containers": [container],
        "volumes": [
            {"name": "config", "configMap": {"name": PROMETHEUS_CONFIG_MAP}},
            {"name": "data", "emptyDir": {}},
        ],
    }


def prometheus(version: str) -> list[dict[str, Any]]:
    import yaml

    name = PROMETHEUS_DEPLOYMENT
    config = yaml.safe_dump(scrape_config(), sort_keys=False, width=120)
    return [
        objects.service_account(name, version, COMPONENT),
        objects.cluster_role(name, version, COMPONENT, [objects.read_rule("", "pods")]),
        objects.cluster_role_binding(name, version, COMPONENT),
        objects.config_map(PROMETHEUS_CONFIG_MAP, version, COMPONENT, {PROMETHEUS_CONFIG_KEY: config}),
        objects.service(name, version, COMPONENT, [("web", PROMETHEUS_PORT)]),
        objects.deployment(name, version, COMPONENT, _pod_spec()),
    ]
