"""What the kubernetes checks share, each loaded with one request per run (see registry.Fact): the client,
the server's version, the control plane's deployments, the mesh's pods (through the shared STATUS fact,
so the Prometheus checks reuse the same listing), the CRDs and the control plane's ConfigMaps and Secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshctl.errors import MeshError
from meshctl.health.facts import STATUS
from meshctl.health.registry import CheckContext, Fact
from meshctl.platform.kubernetes.api import KubeApi, NotFound, quote
from meshctl.platform.kubernetes.conventions import CONTROL_NS

if TYPE_CHECKING:
    from meshctl.platform.kubernetes.platform import KubernetesPlatform
    from meshctl.platform.kubernetes.pods import Pod

API_TIMEOUT_S = 4.0  # below the checks' own timeouts, so a slow server fails with its own message


def kube_platform(ctx: CheckContext) -> KubernetesPlatform:
    from meshctl.platform.kubernetes.platform import KubernetesPlatform

    platform = ctx.platform
    if not isinstance(platform, KubernetesPlatform):
        raise MeshError(f"this check runs on the kubernetes platform, not on {platform.name}")
    return platform


def api(ctx: CheckContext) -> KubeApi:
    return kube_platform(ctx).api


def _version(ctx: CheckContext) -> dict[str, Any]:
    document: dict[str, Any] = api(ctx).get("/version", timeout_s=API_TIMEOUT_S)
    return document


def _deployments(ctx: CheckContext) -> dict[str, dict[str, Any]]:
    items = api(ctx).list(f"/apis/apps/v1/namespaces/{CONTROL_NS}/deployments")
    return {item["metadata"]["name"]: item for item in items}


def _pods(ctx: CheckContext) -> tuple[Pod, ...]:
    from meshctl.platform.kubernetes.platform import pods_of

    return pods_of(ctx.get(STATUS))


def _crds(ctx: CheckContext) -> dict[str, dict[str, Any]]:
    items = api(ctx).list("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    return {item["metadata"]["name"]: item for item in items}


def _namespace(ctx: CheckContext) -> dict[str, Any] | None:
    try:
        document: dict[str, Any] = api(ctx).get(f"/api/v1/namespaces/{CONTROL_NS}", timeout_s=API_TIMEOUT_S)
    except NotFound:
        return None
    return document


VERSION: Fact[dict[str, Any]] = Fact("kubernetes version", _version)
DEPLOYMENTS: Fact[dict[str, dict[str, Any]]] = Fact("control plane deployments", _deployments)
PODS: Fact[tuple[Pod, ...]] = Fact("mesh pods", _pods)
CRDS: Fact[dict[str, dict[str, Any]]] = Fact("custom resource definitions", _crds)
NAMESPACE: Fact[dict[str, Any] | None] = Fact("control plane namespace", _namespace)


def control_object(ctx: CheckContext, plural: str, name: str) -> dict[str, Any]:
    """A ConfigMap or Secret of the control plane's namespace; NotFound (a MeshError) when absent."""
    document: dict[str, Any] = api(ctx).get(
        f"/api/v1/namespaces/{CONTROL_NS}/{plural}/{quote(name)}", timeout_s=API_TIMEOUT_S
    )
    return document


def control_pods(ctx: CheckContext) -> list[Pod]:
    return [p for p in ctx.get(PODS) if p.namespace == CONTROL_NS]


def meshed_pods(ctx: CheckContext) -> list[Pod]:
    """Meshed workload pods (with a proxy container), of `-n`'s namespace when given."""
    namespace = ctx.options.namespace
    return [
        p
        for p in ctx.get(PODS)
        if p.namespace != CONTROL_NS and p.proxy is not None and (namespace is None or p.namespace == namespace)
    ]
