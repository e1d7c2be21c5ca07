"""The kubernetes platform's catalogue: every category of `meshctl check --platform kubernetes`, in order.

Identity (MC4001-MC4009), Prometheus (MC6001-MC6004) and MC8004 are the shared checks of
meshctl/health, fed with this platform's facts; the MCx100-MCx199 codes exist only on Kubernetes.
"""

from __future__ import annotations

from meshctl.health.registry import Category


def categories() -> list[Category]:
    from meshctl.health.checks_identity import identity_category
    from meshctl.health.checks_prometheus import prometheus_category
    from meshctl.platform.kubernetes.checks_cluster import API, PRE, VERSION_CATEGORY
    from meshctl.platform.kubernetes.checks_mesh import CONFIG, EXISTENCE
    from meshctl.platform.kubernetes.checks_plane import CONTROL_API, DATA_PLANE, VERSIONS
    from meshctl.platform.kubernetes.identity import KUBE_SOURCE

    return [
        API,
        VERSION_CATEGORY,
        PRE,
        EXISTENCE,
        CONFIG,
        identity_category(KUBE_SOURCE, requires=("kubernetes-api",)),
        CONTROL_API,
        prometheus_category(requires=("kubernetes-api",)),
        VERSIONS,
        DATA_PLANE,
    ]
