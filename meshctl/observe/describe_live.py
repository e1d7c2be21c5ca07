"""The live part of `meshctl describe`, read from the proxies' admin endpoints (`GET /config.json`).

The workload's own proxies say whether they are ready and which snapshot they run. Its clients' proxies
hold what only a client knows: the endpoints of the workload's service they balance over, and their
circuit breaker's verdict on each endpoint (ejected, on probation, in). A proxy that cannot be read is
named with the reason, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InstanceState:
    pod: str
    ready: bool | None
    snapshot: int | None
    identity: str | None


@dataclass(frozen=True)
class EndpointVerdict:
    client: str  # the pod whose proxy holds the breaker
    endpoint: str  # "address:port"
    pod: str  # the endpoint's pod, when the client's discovery names it
    state: str  # "ejected", "probation" or "in"
    failures_in_a_row: int
    ejected_for_s: float


@dataclass(frozen=True)
class BreakerState:
    client: str
    authority: str
    ejections: int  # since that client's breaker was made
    verdicts: tuple[EndpointVerdict, ...]


@dataclass(frozen=True)
class Live:
    instances: tuple[InstanceState, ...] = ()
    endpoints: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # authority -> "addr:port pod"
    endpoints_from: str | None = None  # the proxy whose discovery view `endpoints` is
    breakers: tuple[BreakerState, ...] = ()
    unreachable: Mapping[str, str] = field(default_factory=dict)  # pod -> why it could not be read

    @property
    def ejected(self) -> list[EndpointVerdict]:
        return [v for b in self.breakers for v in b.verdicts if v.state == "ejected"]


def _of_service(authority: str, services: tuple[str, ...], namespace: str) -> bool:
    host = authority.rpartition(":")[0]
    return any(host == f"{s}.{namespace}.svc.cluster.local" for s in services)


def live_state(dumps: Mapping[str, Mapping[str, Any] | str], instances: tuple[str, ...], services: tuple[str, ...],
               namespace: str) -> Live:  # fmt: skip
    """The live view from each proxy's config dump (pod -> document, or the reason it could not be read)."""
    unreachable = {pod: dump for pod, dump in sorted(dumps.items()) if isinstance(dump, str)}
    documents = {pod: dump for pod, dump in sorted(dumps.items()) if not isinstance(dump, str)}
    states = []
    for pod in instances:
        dump = documents.get(pod)
        if dump is not None:
            certificate = dump.get("certificate") or {}
            identity = certificate.get("identity")
            states.append(InstanceState(pod, dump.get("ready"), dump.get("snapshot_version"), identity))
    endpoints: dict[str, tuple[str, ...]] = {}
    endpoints_from = None
    # A client's view of discovery is what it balances over; any proxy that is not the workload's will do,
    # and the workload's own otherwise (they all get the same snapshot).
    for pod in sorted(documents, key=lambda p: (p in instances, p)):
        found = {a: tuple(e) for a, e in (documents[pod].get("endpoints") or {}).items()
                 if _of_service(a, services, namespace)}  # fmt: skip
        if found:
            endpoints, endpoints_from = found, pod
            break
    breakers = []
    for pod, dump in documents.items():
        pods = {entry.split(" ")[0]: entry.partition(" ")[2] for entries in (dump.get("endpoints") or {}).values()
                for entry in entries}  # fmt: skip
        for authority, breaker in (dump.get("circuit_breakers") or {}).items():
            if not _of_service(authority, services, namespace):
                continue
            verdicts = tuple(
                EndpointVerdict(pod, endpoint, pods.get(endpoint, ""), str(state.get("state")),
                                int(state.get("failures_in_a_row") or 0), float(state.get("ejected_for_s") or 0.0))
                for endpoint, state in sorted((breaker.get("endpoints") or {}).items())
            )  # fmt: skip
            breakers.append(BreakerState(pod, authority, int(breaker.get("ejections") or 0), verdicts))
    return Live(tuple(states), endpoints, endpoints_from, tuple(breakers), unreachable)


def live_document(live: Live) -> dict[str, Any]:
    return {
        "instances": [{"pod": s.pod, "ready": s.ready, "snapshot": s.snapshot, "identity": s.identity}
                      for s in live.instances],
        "endpoints": {a: list(e) for a, e in live.endpoints.items()},
        "endpointsSeenBy": live.endpoints_from,
        "circuitBreakers": [
            {"client": b.client, "authority": b.authority, "ejections": b.ejections,
             "endpoints": [{"endpoint": v.endpoint, "pod": v.pod, "state": v.state,
                            "failuresInARow": v.failures_in_a_row, "ejectedForSeconds": v.ejected_for_s}
                           for v in b.verdicts]}
            for b in live.breakers
        ],
        "unreachable": dict(live.unreachable),
    }  # fmt: skip
