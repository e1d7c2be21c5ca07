"""What the local mesh is made of: the control plane, Prometheus, and (with the demo) the booksapp pods,
their sidecars, the ingress and the traffic generator, each with its addresses from the address plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshctl.identity import control_plane_identity, workload_identity
from meshctl.platform.local.addresses import (
    INGRESS_PORT,
    PROXY_ADMIN_PORT,
    PROXY_INBOUND_PORT,
    PROXY_OUTBOUND_PORT,
    PROXY_TAP_PORT,
    AddressPlan,
    hostport,
)

DEMO_NAMESPACE = "booksapp"
CONTROL_NAMESPACE = "meshctl-system"
CONTROL_DEPLOYMENT = "meshctl-control"


@dataclass(frozen=True)
class DemoService:
    name: str
    port: int
    protocol: str  # "http" | "grpc"
    replicas: int


# Deployment order fixes the address plan: webapp is 127.77.1.x, authors .2.x, books .3.x, ratings .4.x.
DEMO_SERVICES: tuple[DemoService, ...] = (
    DemoService("webapp", 7000, "http", 2),
    DemoService("authors", 7001, "http", 1),
    DemoService("books", 7002, "http", 2),
    DemoService("ratings", 7003, "grpc", 1),
)


@dataclass(frozen=True)
class Pod:
    """A meshed pod: one app instance with its sidecar proxy, or the ingress proxy alone."""

    pod: str
    namespace: str
    deployment: str
    service_account: str
    ip: str
    service: str | None = None  # the service this pod backs (None for the ingress)
    port: int | None = None  # the app's port (the service port)
    protocol: str = "http"

    @property
    def identity(self) -> str:
        return workload_identity(self.service_account, self.namespace)

    @property
    def app(self) -> str:
        return hostport(self.ip, self.port or 0)

    @property
    def inbound(self) -> str:
        return hostport(self.ip, PROXY_INBOUND_PORT)

    @property
    def outbound(self) -> str:
        return hostport(self.ip, PROXY_OUTBOUND_PORT)

    @property
    def admin(self) -> str:
        return hostport(self.ip, PROXY_ADMIN_PORT)

    @property
    def tap(self) -> str:
        return hostport(self.ip, PROXY_TAP_PORT)


@dataclass(frozen=True)
class DemoOptions:
    failure_rate: float = 0.25  # books POST /books
    latency_ms: float = 150.0  # authors GET /authors/{id}
    rps: float = 10.0  # traffic generator; 0 starts none
    namespace: str = DEMO_NAMESPACE


@dataclass(frozen=True)
class Topology:
    plan: AddressPlan
    demo: DemoOptions | None  # None: control plane and Prometheus only

    @property
    def namespace(self) -> str:
        return self.demo.namespace if self.demo else DEMO_NAMESPACE

    @property
    def control_identity(self) -> str:
        return control_plane_identity(CONTROL_NAMESPACE)

    @property
    def control_pod(self) -> str:
        return f"{CONTROL_DEPLOYMENT}-0"

    @property
    def workloads(self) -> tuple[Pod, ...]:
        if self.demo is None:
            return ()
        return tuple(
            Pod(
                pod=f"{svc.name}-{replica}",
                namespace=self.namespace,
                deployment=svc.name,
                service_account=svc.name,
                ip=self.plan.instance_ip(index, replica),
                service=svc.name,
                port=svc.port,
                protocol=svc.protocol,
            )
            for index, svc in enumerate(DEMO_SERVICES)
            for replica in range(svc.replicas)
        )

    @property
    def ingress(self) -> Pod | None:
        if self.demo is None:
            return None
        return Pod(
            pod="ingress-0",
            namespace=self.namespace,
            deployment="ingress",
            service_account="ingress",
            ip=self.plan.ingress_ip,
        )

    @property
    def ingress_listen(self) -> str:
        return hostport(self.plan.ingress_ip, INGRESS_PORT)

    @property
    def proxies(self) -> tuple[Pod, ...]:
        ingress = self.ingress
        return self.workloads + ((ingress,) if ingress else ())

    @property
    def traffic(self) -> bool:
        return self.demo is not None and self.demo.rps > 0

    def listen_addresses(self) -> list[tuple[str, str]]:
        """(host:port, what) of every listener the mesh will open, to check they are free first."""
        found = [
            (self.plan.control_api, "control plane gRPC API"),
            (self.plan.control_admin, "control plane admin"),
            (self.plan.prometheus, "Prometheus"),
        ]
        for pod in self.workloads:
            found += [
                (pod.app, f"app of {pod.pod}"),
                (pod.inbound, f"inbound proxy of {pod.pod}"),
                (pod.outbound, f"outbound proxy of {pod.pod}"),
                (pod.admin, f"proxy admin of {pod.pod}"),
                (pod.tap, f"proxy tap of {pod.pod}"),
            ]
        if self.ingress is not None:
            found += [(self.ingress_listen, "ingress"), (self.ingress.admin, "proxy admin of ingress-0")]
            found.append((self.ingress.tap, "proxy tap of ingress-0"))
        return found
