"""The kubernetes platform: the mesh in a cluster, read with the official client (see conventions.py).

Nothing here imports the client at import time, so `meshctl --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshctl.platform.base import PlatformSpec
    from meshctl.platform.kubernetes.platform import KubernetesPlatform


def open_kubernetes(spec: PlatformSpec) -> KubernetesPlatform:
    """The platform for a spec: the kubeconfig's context (else its current one) and the namespace."""
    from meshctl.platform.kubernetes.api import connect
    from meshctl.platform.kubernetes.platform import KubernetesPlatform

    api = connect(spec.context, spec.kubeconfig)
    return KubernetesPlatform(api, spec.namespace, prometheus_url=spec.prometheus_url)
