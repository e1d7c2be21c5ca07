"""Service discovery as the proxy uses it: an authority (as an app writes it) → a Destination.

A Router is immutable and built from one discovery Snapshot; the runtime swaps in a new one per
snapshot, so a request resolves against one consistent view. Apps may write "name", "name:port",
"name.ns", "name.ns.svc" or "name.ns.svc.cluster.local" (with or without port); the proxy's own
namespace fills in a missing namespace and the service's port a missing port.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from meshctl.api import mesh_pb2
from meshctl.proxy.policy.route import DEFAULT, CompiledProfile, CompiledRoute, compile_profile

if TYPE_CHECKING:
    from meshctl.proxy.policy.egress import EgressTable
    from meshctl.proxy.policy.fault import Fault
    from meshctl.proxy.policy.split import Split

log = logging.getLogger("meshctl.proxy.policy.resolve")

CLUSTER_SUFFIX = ("svc", "cluster", "local")
_CACHE_LIMIT = 4096  # distinct raw authorities remembered; cleared when full


class Endpoint(NamedTuple):
    """One ready endpoint of a service. A NamedTuple, not a dataclass, because endpoints key the pools,
    the balancers' and the breakers' dicts on every request: tuple hashing and equality run in C,
    a dataclass's generated __hash__/__eq__ are Python calls."""

    host: str
    port: int
    identity: str
    pod: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True, eq=False)
class Destination:
    authority: str  # canonical "<name>.<ns>.svc.cluster.local:<port>"
    service: str
    namespace: str
    port: int
    protocol: str  # "http" | "grpc"
    endpoints: tuple[Endpoint, ...]
    profile: CompiledProfile | None = None
    # every endpoint, ready or not: the inbound side finds its own service among them
    all_pods: frozenset[str] = field(default_factory=frozenset)
    split: Split | None = None  # a TrafficSplit's apex: each request goes to one of its backends
    fault: Fault | None = None  # a FaultInjection names the service: some requests aborted or delayed
    egress: str | None = None  # a host outside the mesh: the "<namespace>/<name>" of the Egress admitting it

    def match(self, method: str, path: str) -> CompiledRoute:
        """The profile route of a request (timeout, classification); DEFAULT without a profile."""
        return DEFAULT if self.profile is None else self.profile.match(method, path)

    def route_for(self, method: str, path: str) -> str:
        return DEFAULT.name if self.profile is None else self.profile.route_for(method, path)


def split_authority(authority: str) -> tuple[str, int | None] | None:
    """"Host:port" → (lower-case host without trailing dot, port or None); None when malformed."""
    host, sep, port_text = authority.rpartition(":")
    if not sep or "]" in port_text:
        host, port_text = authority, ""
    elif not port_text.isdigit() or len(port_text) > 5:
        return None
    host = host.strip().rstrip(".").lower()
    if not host:
        return None
    return host, int(port_text) if port_text else None


def canonical_name(host: str, default_namespace: str) -> tuple[str, str] | None:
    """The (service, namespace) a host name stands for, or None when it is not a service name."""
    parts = host.split(".")
    if len(parts) == 1:
        return parts[0], default_namespace
    if len(parts) == 2 or (len(parts) == 3 and parts[2] == "svc"):
        return parts[0], parts[1]
    if len(parts) == 5 and tuple(parts[2:]) == CLUSTER_SUFFIX:
        return parts[0], parts[1]
    return None


class Router:
    """Resolve authorities against one snapshot. resolve() is on the hot path: results are cached."""

    def __init__(self, namespace: str, destinations: Iterable[Destination], version: int = 0,
                 egress: EgressTable | None = None) -> None:  # fmt: skip
        self.namespace = namespace
        self.version = version
        self._services: dict[tuple[str, str], Destination] = {(d.service, d.namespace): d for d in destinations}
        self._cache: dict[str, Destination | None] = {}
        self.egress = egress  # None: no Egress in the namespace, every host outside the mesh is refused

    @property
    def destinations(self) -> tuple[Destination, ...]:
        return tuple(self._services.values())

    def resolve(self, authority: str) -> Destination | None:
        try:
            return self._cache[authority]
        except KeyError:
            pass
        found = self._resolve(authority)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[authority] = found
        return found

    def _resolve(self, authority: str) -> Destination | None:
        parsed = split_authority(authority)
        if parsed is None:
            return None
        host, port = parsed
        name = canonical_name(host, self.namespace)
        dest = self._services.get(name) if name is not None else None
        if dest is None or (port is not None and port != dest.port):
            return self.egress.resolve(host, port) if self.egress is not None else None
        return dest

    def refusal_hint(self, authority: str) -> str:
        """The fix for an authority that resolves to nothing (asked on the refusal path only)."""
        from meshctl.proxy.policy.egress import refusal_hint

        parsed = split_authority(authority)
        if parsed is None:
            return ""
        host, port = parsed
        return refusal_hint(host, port, canonical_name(host, self.namespace))

    def service_of_pod(self, pod: str) -> Destination | None:
        """The service a pod backs (the inbound side labels its metrics with it)."""
        for dest in self._services.values():
            if pod in dest.all_pods:
                return dest
        return None


def router_from_snapshot(snapshot: mesh_pb2.Snapshot, namespace: str) -> Router:
    """Services plus their ServiceProfiles (named by the service FQDN, as in Kubernetes)."""
    profiles: dict[tuple[str, str], CompiledProfile] = {}
    for resource in snapshot.resources:
        if resource.kind != "ServiceProfile":
            continue
        parsed = split_authority(resource.name)
        name = canonical_name(parsed[0], resource.namespace or namespace) if parsed else None
        if name is None:
            log.warning("ServiceProfile %s/%s does not name a service", resource.namespace, resource.name)
            continue
        try:
            profiles[name] = compile_profile(json.loads(resource.spec_json) if resource.spec_json else {})
        except (ValueError, TypeError) as exc:
            log.warning("ServiceProfile %s/%s ignored: %s", resource.namespace, resource.name, exc)
    destinations = []
    for svc in snapshot.services:
        ns = svc.namespace or namespace
        endpoints = tuple(
            Endpoint(e.address, int(e.port), e.identity, e.pod) for e in svc.endpoints if e.ready and e.port
        )
        destinations.append(
            Destination(
                authority=f"{svc.name}.{ns}.svc.cluster.local:{svc.port}",
                service=svc.name,
                namespace=ns,
                port=int(svc.port),
                protocol=svc.protocol or "http",
                endpoints=endpoints,
                profile=profiles.get((svc.name, ns)),
                all_pods=frozenset(e.pod for e in svc.endpoints if e.pod),
            )
        )
    # Policies that build on this module's Destination; faults first, so split backends carry theirs.
    from meshctl.proxy.policy.egress import egress_table
    from meshctl.proxy.policy.fault import with_faults
    from meshctl.proxy.policy.split import with_splits

    destinations = with_faults(destinations, snapshot.resources, namespace)
    return Router(namespace, with_splits(destinations, snapshot.resources, namespace), int(snapshot.version),
                  egress_table(snapshot.resources, namespace))  # fmt: skip
