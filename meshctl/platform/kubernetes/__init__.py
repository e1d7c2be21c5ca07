"""The kubernetes platform: the mesh in a cluster, read with the official client (see conventions.py).

Nothing here imports the client at import time, so `meshctl --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meshctl.cli.context import CliContext
    from meshctl.platform.kubernetes.platform import KubernetesPlatform


def open_kubernetes(cli: CliContext) -> KubernetesPlatform:
    """The platform for the global flags: the kubeconfig's `--context` (else its current one) and `-n`."""
    from meshctl.platform.kubernetes.api import connect
    from meshctl.platform.kubernetes.platform import KubernetesPlatform

    return KubernetesPlatform(connect(cli.kube_context), cli.namespace)
