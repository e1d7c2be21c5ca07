"""What `meshctl install` renders: the objects of the mesh in a cluster, as plain mappings in the order
`kubectl apply -f -` should create them (namespace, CRDs, RBAC, configuration, workloads, webhook).

Nothing here talks to a cluster. The output is the same for the same input but for the certificates,
which are new on every run unless their files are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshctl.platform.kubernetes.conventions import CONTROL_NS, INJECT_ANNOTATION
from meshctl.platform.kubernetes.manifests import objects
from meshctl.platform.kubernetes.manifests.pki import IdentityMaterial, InjectorTls


@dataclass(frozen=True)
class InstallPlan:
    version: str
    crds: bool = True
    control_plane: bool = True
    identity: IdentityMaterial | None = None  # required with control_plane
    injector: InjectorTls | None = None  # required with control_plane


def namespace(version: str) -> dict[str, Any]:
    labels = objects.labels(version) | {
        INJECT_ANNOTATION: "disabled",  # the injector leaves the mesh's own pods alone
        "pod-security.kubernetes.io/enforce": "restricted",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CONTROL_NS, "labels": labels}}


def render(plan: InstallPlan) -> list[dict[str, Any]]:
    from meshctl.platform.kubernetes.manifests.control import control_plane, injector_webhook
    from meshctl.platform.kubernetes.manifests.crds import custom_resource_definitions
    from meshctl.platform.kubernetes.manifests.prometheus import prometheus

    out: list[dict[str, Any]] = []
    if plan.control_plane:
        out.append(namespace(plan.version))
    if plan.crds:
        out += custom_resource_definitions(objects.labels(plan.version))
    if plan.control_plane:
        if plan.identity is None or plan.injector is None:
            raise ValueError("the control plane needs its identity and the injector's certificate")
        out += control_plane(plan.version, plan.identity, plan.injector)
        out += prometheus(plan.version)
        out.append(injector_webhook(plan.version, plan.injector.ca_pem))
    return out
