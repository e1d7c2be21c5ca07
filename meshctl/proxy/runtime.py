"""The proxy's shared state, built in one place from its config: router, balancers, TLS, metrics.

The control client's callbacks (hopped onto the event loop) feed `on_certificate` and `on_snapshot`;
the listeners read the current router and TLS contexts per request/connection, so an update never
tears a request in half. Ready = a certificate and a snapshot have both arrived.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from meshctl.api import mesh_pb2
from meshctl.metrics.registry import ProxyMetrics
from meshctl.proxy.config import ProxyConfig
from meshctl.proxy.errors import Failure
from meshctl.proxy.policy.authz import Authz, authz_for
from meshctl.proxy.policy.balance import Balancer, make_balancer
from meshctl.proxy.policy.breaker import Breaker
from meshctl.proxy.policy.ingress import IngressRoutes, ingress_routes
from meshctl.proxy.policy.resolve import Destination, Router, router_from_snapshot
from meshctl.proxy.policy.retry import Budget
from meshctl.proxy.rescue import rescue
from meshctl.proxy.tls import TlsContexts, build_contexts
from meshctl.resources import load_balancer
from meshctl.resources.load_balancer import LoadBalancer
from meshctl.resources.service_profile import DEFAULT_RETRY_BUDGET

if TYPE_CHECKING:
    from meshctl.proxy.control_client import IssuedCertificate  # keeps grpc out of this module's imports
    from meshctl.proxy.stack import TapHub

log = logging.getLogger("meshctl.proxy.runtime")


class ProxyRuntime:
    def __init__(self, config: ProxyConfig, metrics: ProxyMetrics, clock: Callable[[], float]) -> None:
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.router = Router(config.namespace, ())
        self.ingress = IngressRoutes(())  # exposes nothing until a snapshot names what
        self.tls: TlsContexts | None = None
        self.snapshot_version: int | None = None
        self.local: Destination | None = None  # the service this proxy's pod backs
        self.authz: Authz | None = None  # TrafficTargets selecting this workload; None: every client admitted
        self.rescue: Callable[[BaseException], Failure] = rescue
        self._balancers: dict[str, Balancer] = {}
        self._budgets: dict[str, Budget] = {}  # retry budgets by destination, kept across snapshots
        self._breakers: dict[str, Breaker] = {}  # circuit breakers by destination, kept across snapshots
        self.tap: TapHub | None = None  # set when the tap server runs; read once per request
        self._on_certificate: list[Callable[[TlsContexts], None]] = []
        self._on_snapshot: list[Callable[[Router], None]] = []

    # -- updates (event-loop thread) ---------------------------------------------------------------
    def on_certificate(self, cert: IssuedCertificate) -> None:
        try:
            contexts = build_contexts(cert)
        except (ssl.SSLError, ValueError, OSError) as exc:
            log.error("certificate rejected, keeping the previous one: %s", exc)
            self.metrics.proxy_error("certificate rejected")
            return
        if cert.identity != self.config.identity:
            log.warning("issued identity %s differs from configured %s", cert.identity, self.config.identity)
        self.tls = contexts
        log.info("certificate installed: identity=%s not_after=%s", cert.identity, cert.not_after.isoformat())
        for callback in list(self._on_certificate):
            callback(contexts)

    def on_snapshot(self, snapshot: mesh_pb2.Snapshot) -> None:
        router = router_from_snapshot(snapshot, self.config.namespace)
        if self.config.ingress is not None:
            self.ingress = ingress_routes(snapshot, router)
        self.router = router
        self.snapshot_version = router.version
        self.local = router.service_of_pod(self.config.pod)
        self.authz = authz_for(self.config.identity, snapshot.resources, self.config.namespace)
        live = {d.authority: d for d in router.destinations}
        for authority in [a for a in self._balancers if a not in live or _lb(live[a]) != self._balancers[a].spec]:
            del self._balancers[authority]  # gone, or its profile's loadBalancer changed: made anew when asked
        for authority, balancer in self._balancers.items():
            balancer.retain(live[authority].endpoints)
        for authority, budget in list(self._budgets.items()):
            profile = live[authority].profile if authority in live else None
            if profile is None or profile.retry_budget != budget.spec:
                del self._budgets[authority]  # gone or changed: the next retryable request makes a new one
        for authority, breaker in list(self._breakers.items()):
            profile = live[authority].profile if authority in live else None
            if profile is None or profile.failure_accrual != breaker.spec:
                del self._breakers[authority]
            else:
                breaker.retain(live[authority].endpoints)
        log.info("snapshot %d: %d services", router.version, len(live))
        for callback in list(self._on_snapshot):
            callback(router)

    def when_certificate(self, callback: Callable[[TlsContexts], None]) -> None:
        """Call `callback` on every installed certificate (main starts the listeners on the first)."""
        self._on_certificate.append(callback)

    def when_snapshot(self, callback: Callable[[Router], None]) -> None:
        self._on_snapshot.append(callback)

    # -- queries (hot path) --------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.tls is not None and self.snapshot_version is not None

    def resolve(self, authority: str) -> Destination | None:
        return self.router.resolve(authority)

    def resolve_ingress(self, authority: str, path: str = "/") -> Destination | None:
        """Ingress: the service a MeshIngress exposes at this host and path (None: it is not in discovery).

        Raises NotExposed for anything no MeshIngress exposes, internal services named in Host included.
        """
        return self.ingress.decide(authority, path)

    def balancer(self, dest: Destination) -> Balancer:
        balancer = self._balancers.get(dest.authority)
        if balancer is None:
            balancer = self._balancers[dest.authority] = make_balancer(self.config.balancer, self.clock,
                                                                       spec=_lb(dest))  # fmt: skip
        return balancer

    def retry_budget(self, dest: Destination) -> Budget:
        """The retry budget of a destination with a retryable route (its profile's, else Linkerd's default)."""
        budget = self._budgets.get(dest.authority)
        if budget is None:
            spec = dest.profile.retry_budget if dest.profile is not None else DEFAULT_RETRY_BUDGET
            budget = self._budgets[dest.authority] = Budget(spec, self.clock)
        return budget

    def breaker(self, dest: Destination) -> Breaker | None:
        """The circuit breaker of a destination whose profile sets failureAccrual; None otherwise."""
        breaker = self._breakers.get(dest.authority)
        if breaker is None:
            accrual = dest.profile.failure_accrual if dest.profile is not None else None
            if accrual is None:
                return None
            breaker = self._breakers[dest.authority] = Breaker(accrual, self.clock)
        return breaker

    def config_dump(self) -> dict[str, Any]:
        tls = self.tls
        return {
            "config": self.config.to_json(),
            "snapshot_version": self.snapshot_version,
            "services": sorted(d.authority for d in self.router.destinations),
            # the endpoints requests go to (the ready ones), as "address:port pod"
            "endpoints": {d.authority: [f"{e} {e.pod}" for e in d.endpoints] for d in self.router.destinations},
            # the ServiceProfile routes each destination resolves requests to, first match first
            "routes": {
                d.authority: [
                    {"name": r.name, "timeout_s": r.timeout_s, "retryable": r.is_retryable} for r in d.profile.routes
                ]
                for d in self.router.destinations
                if d.profile is not None
            },
            "local_service": self.local.authority if self.local else None,
            "certificate": None if tls is None else {"identity": tls.identity, "not_after": tls.not_after.isoformat()},
            "ready": self.ready,
            "retry_budgets": {authority: budget.to_json() for authority, budget in sorted(self._budgets.items())},
            "circuit_breakers": {authority: b.to_json() for authority, b in sorted(self._breakers.items())},
            "traffic_splits": {d.authority: d.split.to_json() for d in self.router.destinations if d.split},
            "faults": {d.authority: d.fault.to_json() for d in self.router.destinations if d.fault},
            "load_balancers": {d.authority: load_balancer.to_dict(lb) for d in self.router.destinations
                               if (lb := _lb(d)) is not None},
            "egress": None if self.router.egress is None else self.router.egress.to_json(),
            "access_policies": None if self.authz is None else self.authz.to_json(),
        }


def _lb(dest: Destination) -> LoadBalancer | None:
    return dest.profile.load_balancer if dest.profile is not None else None


def build_runtime(
    config: ProxyConfig, *, metrics: ProxyMetrics | None = None, clock: Callable[[], float] = time.monotonic
) -> ProxyRuntime:
    """The one function that assembles the proxy's layers from its config."""
    return ProxyRuntime(config, metrics or ProxyMetrics(), clock)
