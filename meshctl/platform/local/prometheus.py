"""The mesh's own Prometheus (Debian's `prometheus` binary): its configuration and command line.

Every proxy's admin /metrics and the control plane's admin /metrics are static targets carrying the
labels a cluster's service discovery would add (namespace, pod, deployment, component), so queries are
the same on both platforms.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from meshctl.errors import MeshError
from meshctl.platform.local.probes import http_get
from meshctl.platform.local.state import Layout
from meshctl.platform.local.topology import CONTROL_DEPLOYMENT, CONTROL_NAMESPACE, Topology

SCRAPE_INTERVAL = "5s"  # short, so a fresh mesh has series within seconds
SCRAPE_TIMEOUT = "4s"
RETENTION = "24h"
PROXY_JOB = "meshctl-proxy"
CONTROL_JOB = "meshctl-control"
# The labels of every target, which `routes`, `stat` and `check` select on; a cluster's Prometheus gives
# them by relabelling (meshctl.platform.kubernetes.manifests.prometheus).
NAMESPACE_LABEL, POD_LABEL, DEPLOYMENT_LABEL, COMPONENT_LABEL = "namespace", "pod", "deployment", "component"
PROXY_COMPONENT, CONTROL_COMPONENT = "proxy", "control-plane"
DEFAULT_BINARY = "/usr/bin/prometheus"


def find_prometheus() -> str:
    """Path of the prometheus binary ($MESHCTL_PROMETHEUS, then PATH, then Debian's location)."""
    configured = os.environ.get("MESHCTL_PROMETHEUS")
    candidates = [configured] if configured else [shutil.which("prometheus"), DEFAULT_BINARY]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    if configured:
        raise MeshError(
            f"MESHCTL_PROMETHEUS={configured} is not an executable file",
            hint="point it at a prometheus binary, or unset it to use the one on PATH",
        )
    raise MeshError(
        "Prometheus is not installed (no `prometheus` on PATH); the local mesh scrapes its proxies with it",
        hint="install it with `apt-get install -y prometheus`, then run `meshctl up` again",
    )


def scrape_config(topology: Topology) -> dict[str, Any]:
    """prometheus.yml as a mapping: one static target per proxy admin, plus the control plane's admin."""
    proxies = [
        {
            "targets": [pod.admin],
            "labels": {
                NAMESPACE_LABEL: pod.namespace,
                POD_LABEL: pod.pod,
                DEPLOYMENT_LABEL: pod.deployment,
                COMPONENT_LABEL: PROXY_COMPONENT,
            },
        }
        for pod in topology.proxies
    ]
    control = [
        {
            "targets": [topology.plan.control_admin],
            "labels": {
                NAMESPACE_LABEL: CONTROL_NAMESPACE,
                POD_LABEL: topology.control_pod,
                DEPLOYMENT_LABEL: CONTROL_DEPLOYMENT,
                COMPONENT_LABEL: CONTROL_COMPONENT,
            },
        }
    ]
    jobs: list[dict[str, Any]] = [
        {"job_name": CONTROL_JOB, "metrics_path": "/metrics", "static_configs": control},
    ]
    if proxies:
        jobs.append({"job_name": PROXY_JOB, "metrics_path": "/metrics", "static_configs": proxies})
    jobs.append({"job_name": "prometheus", "static_configs": [{"targets": [topology.plan.prometheus]}]})
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_TIMEOUT,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "scrape_configs": jobs,
    }


def render_config(topology: Topology) -> str:
    import yaml

    header = "# Written by `meshctl up` on every start: edits here are replaced.\n"
    return header + yaml.safe_dump(scrape_config(topology), sort_keys=False, width=120)


def command(binary: str, layout: Layout, topology: Topology) -> list[str]:
    return [
        binary,
        f"--config.file={layout.prometheus_yml}",
        f"--storage.tsdb.path={layout.prometheus_data}",
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--web.listen-address={topology.plan.prometheus}",
        "--log.level=info",
    ]


def unscraped_proxies(address: str, topology: Topology, timeout_s: float = 1.0) -> list[str] | None:
    """The proxies ("namespace/pod") Prometheus has not yet scraped successfully, from one request to its
    targets API; None when it does not answer. Until a proxy's first scrape, its series do not exist and
    `meshctl check --proxy`, `routes` and `stat` would find nothing."""
    answer = http_get(address, "/api/v1/targets?state=active", timeout_s)
    if answer is None or answer[0] != 200:
        return None
    try:
        targets = json.loads(answer[1])["data"]["activeTargets"]
    except (ValueError, KeyError, TypeError):
        return None
    up = {
        (t["labels"].get("namespace"), t["labels"].get("pod"))
        for t in targets
        if t.get("health") == "up" and t.get("labels", {}).get("component") == "proxy"
    }
    return [f"{pod.namespace}/{pod.pod}" for pod in topology.proxies if (pod.namespace, pod.pod) not in up]
