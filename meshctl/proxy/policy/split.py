"""Traffic split: the requests for an apex service shared among backend services by weight (SMI).

Compiled from the snapshot's TrafficSplit resources into the router: the apex Destination carries a
Split, and the stack picks a backend for each request before the route step, so the backend's endpoints,
balancer and breaker serve it while its metrics keep the apex authority (dst_service names the backend).
The apex's ServiceProfile and FaultInjection, when it has them, apply to every backend. Picks are smooth weighted
round robin (as nginx's): deterministic, exact over every `total` requests, and evenly interleaved. A
weight change arrives with a new snapshot; requests under way keep the backend they were given.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from meshctl.api import mesh_pb2

if TYPE_CHECKING:
    from meshctl.proxy.policy.resolve import Destination

log = logging.getLogger("meshctl.proxy.policy.split")


class Split:
    __slots__ = ("name", "backends", "weights", "_current", "_total")

    def __init__(self, name: str, backends: list[tuple[Destination, int]]) -> None:
        self.name = name  # "<namespace>/<name>" of the TrafficSplit
        chosen = [(d, w) for d, w in backends if w > 0]
        self.backends = tuple(d for d, _ in chosen)
        self.weights = tuple(w for _, w in chosen)
        self._current = [0] * len(chosen)
        self._total = sum(self.weights)

    def pick(self) -> Destination:
        current, weights = self._current, self.weights
        best = 0
        for i, weight in enumerate(weights):
            current[i] += weight
            if current[i] > current[best]:
                best = i
        current[best] -= self._total
        return self.backends[best]

    def to_json(self) -> dict[str, object]:
        return {"trafficSplit": self.name,
                "backends": {d.authority: w for d, w in zip(self.backends, self.weights, strict=True)}}  # fmt: skip


def _inherit(backend: Destination, apex: Destination) -> Destination:
    profile = apex.profile or backend.profile
    fault = apex.fault or backend.fault
    if profile is backend.profile and fault is backend.fault:
        return backend
    return dataclasses.replace(backend, profile=profile, fault=fault)


def with_splits(destinations: list[Destination], resources: Iterable[mesh_pb2.Resource],
                namespace: str) -> list[Destination]:  # fmt: skip
    """The destinations with every valid TrafficSplit applied to its apex (made up when not a service)."""
    by_name = {(d.service, d.namespace): d for d in destinations}
    for resource in resources:
        if resource.kind != "TrafficSplit":
            continue
        ns = resource.namespace or namespace
        where = f"TrafficSplit {ns}/{resource.name}"
        try:
            spec = json.loads(resource.spec_json)
            apex_name = str(spec["service"])
            wanted = [(str(b["service"]), int(b["weight"])) for b in spec["backends"]]
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s ignored: %s", where, exc)
            continue
        known = [(by_name[(name, ns)], weight) for name, weight in wanted if (name, ns) in by_name]
        missing = [name for name, _ in wanted if (name, ns) not in by_name]
        if missing:
            log.warning("%s: no service %s; its weight goes to the others", where, ", ".join(missing))
        if not any(weight > 0 for _, weight in known):
            log.warning("%s ignored: no backend service with a weight above 0", where)
            continue
        apex = by_name.get((apex_name, ns))
        if apex is None:  # an apex with no service of its own: only a name clients use
            first = known[0][0]
            apex = dataclasses.replace(first, authority=f"{apex_name}.{ns}.svc.cluster.local:{first.port}",
                                       service=apex_name, endpoints=(), profile=None, all_pods=frozenset(),
                                       fault=None)  # fmt: skip
        # The apex's profile routes every backend, and its FaultInjection applies to every backend too.
        backends = [(b if b is apex else _inherit(b, apex), weight) for b, weight in known]
        by_name[(apex_name, ns)] = dataclasses.replace(apex, split=Split(f"{ns}/{resource.name}", backends))
    return list(by_name.values())

