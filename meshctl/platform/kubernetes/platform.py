"""The mesh on a Kubernetes cluster, read through the API server (see conventions.py for the names).

Every listing is one call per kind, however many pods the cluster runs: `status()` lists the pods that
carry the mesh label across all namespaces (control plane and meshed workloads together), `proxies()`
the meshed pods of `-n`'s namespace (or of all). Prometheus and the control plane's admin server are
reached through loopback relays to the API server's service proxy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from meshctl.errors import UnreachableError, UsageError
from meshctl.identity import workload_identity
from meshctl.platform.base import (
    CAPABILITIES,
    KUBERNETES,
    ComponentStatus,
    MeshStatus,
    Platform,
    ProcessStatus,
    ProxyInfo,
    select,
)
from meshctl.platform.kubernetes.api import KubeApi, quote
from meshctl.platform.kubernetes.conventions import (
    COMPONENT_LABEL,
    CONTROL_ADMIN_PORT,
    CONTROL_DEPLOYMENT,
    CONTROL_NS,
    MESH_LABEL,
    PROMETHEUS_DEPLOYMENT,
    PROMETHEUS_PORT,
    PROXY_ADMIN_PORT,
    VERSION_LABEL,
)
from meshctl.platform.kubernetes.pods import Pod, parse_pod
from meshctl.platform.kubernetes.portforward import ForwardedPort
from meshctl.platform.kubernetes.relay import Relay, service_proxy_path
from meshctl.platform.logs import LogQuery, LogStream, Source
from meshctl.platform.ports import PortHandle
from meshctl.targets import Target

if TYPE_CHECKING:
    from meshctl.platform.resources import ResourceListing
    from meshctl.resources import KindDef

INSTALL_HINT = "install the mesh: `meshctl install | kubectl apply -f -`"
_KINDS = {"control": "control-plane", "prometheus": "prometheus"}


class KubernetesPlatform(Platform):
    name = KUBERNETES
    capabilities = CAPABILITIES[KUBERNETES]

    def __init__(self, api: KubeApi, namespace: str | None = None, *, prometheus_url: str | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self._prometheus_url = prometheus_url
        self._relays: dict[str, Relay] = {}
        self._forwards: list[ForwardedPort] = []
        self._lock = threading.Lock()

    def mesh_pods(self, namespace: str | None = None) -> list[Pod]:
        """The control plane's and the meshed workloads' pods: one list call."""
        path = "/api/v1/pods" if namespace is None else f"/api/v1/namespaces/{quote(namespace)}/pods"
        return [parse_pod(item) for item in self.api.list(path, {"labelSelector": f"{MESH_LABEL}={CONTROL_NS}"})]

    def status(self) -> MeshStatus:
        pods = self.mesh_pods()
        if not any(p.namespace == CONTROL_NS for p in pods):
            raise UnreachableError(
                f"no mesh control plane runs in namespace {CONTROL_NS} of context {self.api.context!r}",
                hint=INSTALL_HINT,
            )
        return MeshStatus(
            platform=self.name,
            location=f"context {self.api.context} ({self.api.server})",
            started_at=None,
            urls={},
            components=tuple(_component(p) for p in pods),
            extra={"pods": tuple(pods)},
        )

    def proxies(self) -> list[ProxyInfo]:
        return [_proxy(p) for p in self.mesh_pods(self.namespace) if p.namespace != CONTROL_NS and p.proxy]

    def control_plane_version(self) -> str:
        """The version label of the meshctl-control deployment (what `meshctl install` rendered)."""
        from meshctl.platform.kubernetes.api import NotFound

        path = f"/apis/apps/v1/namespaces/{CONTROL_NS}/deployments/{CONTROL_DEPLOYMENT}"
        try:
            deployment = self.api.get(path)
        except NotFound:
            raise UnreachableError(f"no deployment {CONTROL_DEPLOYMENT} in namespace {CONTROL_NS} of context "
                                   f"{self.api.context!r}", hint=INSTALL_HINT) from None  # fmt: skip
        labels = (deployment.get("metadata") or {}).get("labels") or {}
        version = labels.get(VERSION_LABEL)
        if not version:
            raise UnreachableError(f"deployment {CONTROL_NS}/{CONTROL_DEPLOYMENT} has no {VERSION_LABEL} label",
                                   hint=f"re-install the control plane: {INSTALL_HINT}")  # fmt: skip
        return str(version)

    def log_streams(self, target: Target | None, query: LogQuery) -> list[LogStream]:
        """One pods/log request per pod: the proxy container, the workload's own, or the control plane's."""
        from meshctl.platform.kubernetes.logs import PodLogStream, container_for

        if query.source is Source.CONTROL or target is None:
            pods = [p for p in self.mesh_pods(CONTROL_NS)
                    if p.deployment == CONTROL_DEPLOYMENT or p.labels.get(COMPONENT_LABEL) == "control"]  # fmt: skip
            if not pods:
                raise UnreachableError(
                    f"no control plane pod runs in namespace {CONTROL_NS} of context {self.api.context!r}",
                    hint=INSTALL_HINT,
                )
        else:
            meshed = [p for p in self.mesh_pods(self.namespace) if p.namespace != CONTROL_NS and p.proxy]
            chosen = {(p.namespace, p.pod) for p in select([_proxy(p) for p in meshed], target)}
            if not chosen:
                self.select_proxies(target)  # the refusal, worded once for every command
            pods = [p for p in meshed if (p.namespace, p.name) in chosen]
        streams: list[LogStream] = []
        for pod in pods:
            container = container_for(pod, query.source)
            if container is not None:
                streams.append(PodLogStream(self.api, pod, container, query))
        if not streams:
            raise UsageError(f"no pod of {target} has a container of its own beside the proxy",
                             hint="use --proxy for the proxy's log")  # fmt: skip
        return streams

    def prometheus_url(self) -> str:
        if self._prometheus_url:
            return self._prometheus_url
        return f"http://{self._relay(PROMETHEUS_DEPLOYMENT, PROMETHEUS_PORT)}"

    def proxy_port(self, proxy: ProxyInfo, port: int) -> PortHandle:
        """A port-forward to the proxy's pod through the API server (as `kubectl port-forward`), exposed on
        127.0.0.1: the pod IP in `proxy.admin` is not reachable from outside the cluster."""
        forward = ForwardedPort(self.api, proxy.namespace, proxy.pod, port)
        with self._lock:
            self._forwards = [f for f in self._forwards if f.is_open] + [forward]
        return forward

    def list_resources(self, kinds: Iterable[KindDef], namespace: str | None,
                       missing_ok: bool = False) -> ResourceListing:  # fmt: skip
        from meshctl.platform.resources import list_cluster

        return list_cluster(self.api, kinds, namespace, missing_ok)

    def services_of(self, proxies: Iterable[ProxyInfo]) -> dict[str, tuple[str, ...]]:
        """Services whose selector matches each pod's labels: two list calls per namespace."""
        chosen = list(proxies)
        out: dict[str, tuple[str, ...]] = {}
        for namespace in sorted({p.namespace for p in chosen}):
            labels = {pod.name: pod.labels for pod in self.mesh_pods(namespace)}
            services = self.api.list(f"/api/v1/namespaces/{quote(namespace)}/services")
            for proxy in (p for p in chosen if p.namespace == namespace):
                own = labels.get(proxy.pod) or {}
                out[proxy.pod] = tuple(sorted(
                    str(s["metadata"]["name"]) for s in services
                    if (selector := (s.get("spec") or {}).get("selector"))
                    and all(own.get(k) == v for k, v in selector.items())
                ))  # fmt: skip
        return out

    def control_plane_admin(self) -> str:
        return self._relay(CONTROL_DEPLOYMENT, CONTROL_ADMIN_PORT)

    def _relay(self, service: str, port: int) -> str:
        with self._lock:
            key = f"{service}:{port}"
            if key not in self._relays:
                self._relays[key] = Relay(self.api, service_proxy_path(CONTROL_NS, service, port))
            return self._relays[key].address

    def close(self) -> None:
        with self._lock:
            for relay in self._relays.values():
                relay.close()
            self._relays.clear()
            for forward in self._forwards:
                forward.close()
            self._forwards.clear()


def pods_of(status: MeshStatus) -> tuple[Pod, ...]:
    """The pods behind a kubernetes MeshStatus (what the checks judge)."""
    pods: Any = status.extra.get("pods")
    if not isinstance(pods, tuple):
        raise UnreachableError("the mesh status does not come from the kubernetes platform")
    return pods


def _component(pod: Pod) -> ComponentStatus:
    role = pod.labels.get(COMPONENT_LABEL)
    kind = _KINDS.get(role or "", "control-plane") if pod.namespace == CONTROL_NS else "workload"
    processes = tuple(ProcessStatus(role=c.name, pid=0, alive=c.running) for c in pod.containers)
    return ComponentStatus(
        name=pod.deployment,
        kind=kind,
        namespace=pod.namespace,
        deployment=pod.deployment,
        pod=pod.name,
        addresses={"admin": f"{pod.ip}:{PROXY_ADMIN_PORT}"} if pod.ip and pod.proxy else {},
        processes=processes,
        ready=pod.ready,
        detail=pod.problem() or ("" if pod.ready else pod.not_ready()),
    )


def _proxy(pod: Pod) -> ProxyInfo:
    # The admin address is the pod's own: commands outside the cluster reach it through a port-forward.
    return ProxyInfo(
        pod=pod.name,
        namespace=pod.namespace,
        deployment=pod.deployment,
        admin=f"{pod.ip}:{PROXY_ADMIN_PORT}" if pod.ip else "",  # "": no IP yet (Pending)
        identity=workload_identity(pod.service_account, pod.namespace),
        kind="sidecar",
    )
