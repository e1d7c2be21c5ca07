"""`meshctl debug pod/X` on Kubernetes: an ephemeral debug container next to a running pod's proxy.

The container is added as `kubectl debug` adds one: a strategic-merge PATCH of the pod's
`ephemeralcontainers` subresource. It shares the proxy container's process namespace
(`targetContainerName`), runs the debug image (tshark, tcpdump, curl) with the capabilities a capture
needs, and keeps a terminal open for `kubectl attach`. Ephemeral containers cannot be changed or removed:
a pod that has one already is reused as it is. Then the kubelet's status says when it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from meshctl import __version__
from meshctl.errors import MeshError, MeshTimeoutError
from meshctl.platform.base import Platform, ProxyInfo
from meshctl.platform.kubernetes.api import KubeApi, quote
from meshctl.platform.kubernetes.conventions import DEBUG_CONTAINER, DEBUG_IMAGE_REPOSITORY, PROXY_CONTAINER
from meshctl.platform.kubernetes.pods import STUCK_REASONS

PATCH_TYPE = "application/strategic-merge-patch+json"
CAPABILITIES = ("NET_ADMIN", "NET_RAW")
POLL_S = 0.5


def debug_container(version: str = __version__) -> dict[str, Any]:
    return {
        "name": DEBUG_CONTAINER,
        "image": f"{DEBUG_IMAGE_REPOSITORY}:{version}",
        "imagePullPolicy": "IfNotPresent",
        "targetContainerName": PROXY_CONTAINER,
        "stdin": True,
        "tty": True,
        "securityContext": {"capabilities": {"add": list(CAPABILITIES)}},
    }


@dataclass(frozen=True)
class Attached:
    namespace: str
    pod: str
    how: str  # "added" | "already there" (ephemeral) | "sidecar" (injected with the pod)
    container: str = DEBUG_CONTAINER

    def commands(self) -> list[str]:
        ns, pod = self.namespace, self.pod
        return [
            f"kubectl -n {ns} exec -it {pod} -c {DEBUG_CONTAINER} -- tshark -i any",
            f"kubectl -n {ns} attach -it {pod} -c {DEBUG_CONTAINER}",
        ]


def _pod_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}"


def _has(document: Mapping[str, Any], key: str) -> bool:
    return any(c.get("name") == DEBUG_CONTAINER for c in (document.get("spec") or {}).get(key) or [])


def attach(api: KubeApi, namespace: str, pod: str) -> Attached:
    """Add the debug container to the pod unless it has one (ephemeral, or the injected sidecar)."""
    document = api.get(_pod_path(namespace, pod))
    if _has(document, "containers"):
        return Attached(namespace, pod, "sidecar")
    if _has(document, "ephemeralContainers"):
        return Attached(namespace, pod, "already there")
    body = {"spec": {"ephemeralContainers": [debug_container()]}}
    api.patch(_pod_path(namespace, pod) + "/ephemeralcontainers", body, content_type=PATCH_TYPE)
    return Attached(namespace, pod, "added")


def container_state(document: Mapping[str, Any]) -> tuple[str, str]:
    """("running" | "waiting" | "terminated" | "pending", detail) of the debug container, from the pod's
    status (ephemeral containers report in ephemeralContainerStatuses, sidecars in containerStatuses)."""
    status = document.get("status") or {}
    for key in ("ephemeralContainerStatuses", "containerStatuses"):
        for entry in status.get(key) or []:
            if entry.get("name") != DEBUG_CONTAINER:
                continue
            state = entry.get("state") or {}
            if "running" in state:
                return "running", ""
            for name in ("waiting", "terminated"):
                if name in state:
                    detail = state[name] or {}
                    reason = str(detail.get("reason") or name)
                    message = detail.get("message")
                    return name, reason + (f": {message}" if message else "")
    return "pending", "no status yet"


def wait_running(api: KubeApi, attached: Attached, timeout_s: float, progress: Callable[[str], None]) -> None:
    """Until the kubelet reports the container running; MeshTimeoutError (or MeshError when it cannot start)."""
    started = time.monotonic()
    said = ""
    while True:
        state, detail = container_state(api.get(_pod_path(attached.namespace, attached.pod)))
        if state == "running":
            return
        where = f"{attached.namespace}/{attached.pod}"
        reason = detail.split(":")[0]
        if state == "terminated" or reason in STUCK_REASONS:
            image = f"{DEBUG_IMAGE_REPOSITORY}:{__version__}"
            raise MeshError(f"the debug container of {where} cannot run: {detail}",
                            hint=f"see `kubectl -n {attached.namespace} describe pod {attached.pod}` "
                                 f"(can the node pull {image}?)")  # fmt: skip
        elapsed = time.monotonic() - started
        if detail != said:
            said = detail
            progress(f"waiting for {DEBUG_CONTAINER} in {where}: {detail} ({elapsed:.0f}s)")
        if elapsed >= timeout_s:
            raise MeshTimeoutError(f"the debug container of {where} is not running after {timeout_s:g}s ({detail})",
                                   hint=f"see `kubectl -n {attached.namespace} describe pod {attached.pod}`, "
                                        "or wait longer with --timeout")  # fmt: skip
        time.sleep(min(POLL_S, max(0.0, timeout_s - elapsed)))


def debug_pods(platform: Platform, proxies: list[ProxyInfo], timeout_s: float,
               progress: Callable[[str], None]) -> list[Attached]:  # fmt: skip
    """Attach a debug container to the pod of each proxy and wait for each to run."""
    from meshctl.platform.kubernetes.platform import KubernetesPlatform

    if not isinstance(platform, KubernetesPlatform):
        raise MeshError(f"debug containers need the kubernetes platform, not {platform.name}",
                        hint="use --platform kubernetes")  # fmt: skip
    done = []
    for proxy in proxies:
        attached = attach(platform.api, proxy.namespace, proxy.pod)
        progress(f"{attached.namespace}/{attached.pod}: {DEBUG_CONTAINER} {attached.how}")
        wait_running(platform.api, attached, timeout_s, progress)
        done.append(attached)
    return done
